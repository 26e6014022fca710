// The Azure ML workspace and what it is made of: its own storage account, its Key Vault, the
// container registry, Application Insights; plus the project's Key Vault for its own secrets.

param prefix string
param location string
param tags object
param appInsightsId string
param logAnalyticsId string
@description('Basic is enough for one team; Premium adds geo-replication, private link and retention policies.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param registrySku string = 'Basic'
@description('Name of the project\'s Key Vault (main.bicep names it: it reads TLS secrets from it).')
param appVaultName string

var suffix = uniqueString(resourceGroup().id)

// Azure ML's own storage (code snapshots, job outputs, the model store), separate from the data
// lake so that the lake's access list stays short. Same rules: Entra ID only.
resource store 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: the name is computed (st<prefix>ws<unique suffix>, cut to 24 lowercase characters), which checkov cannot evaluate
  name: take('st${prefix}ws${suffix}', 24)
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_GRS'
  }
  properties: {
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    isLocalUserEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // checkov:skip=CKV_AZURE_59: reached from outside Azure (worker, CI) without a VNet; Entra ID only, shared keys and anonymous blob access off
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // checkov:skip=CKV_AZURE_35: Azure ML compute and the studio reach it over its public endpoint; access is Entra ID only (shared keys off); a managed VNet is a later step
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource storeBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: store
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// Access by Azure RBAC only (no access policies): who may read a secret is a role assignment,
// listed in roles.bicep. Purge protection: a deleted vault cannot be destroyed before 90 days.
resource workspaceVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: take('kv${prefix}ws${suffix}', 24)
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109 below
      // checkov:skip=CKV_AZURE_109: Azure ML reaches its vault over the public endpoint unless the workspace has a managed VNet; access is RBAC only
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// The project's secrets (the QA service key, the production endpoint keys the release mirrors
// for secret injection), apart from Azure ML's own vault: the Prefect worker may write here,
// and nowhere else.
resource appVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: appVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109 below
      // checkov:skip=CKV_AZURE_109: the Prefect worker and Azure ML's secret injection read it over the public endpoint; access is RBAC only
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Who read which secret.
resource vaultAudit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: appVault
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_139: the scoring images are pushed from CI and the worker outside any VNet; pulls and pushes need Entra ID (admin user off, anonymous pull off)
  // checkov:skip=CKV_AZURE_163: vulnerability scanning is Defender for Containers, a subscription plan this template does not buy
  // checkov:skip=CKV_AZURE_166: quarantine needs the Premium SKU and a scanner that releases images
  // checkov:skip=CKV_AZURE_233: zone redundancy needs the Premium SKU
  name: take('cr${prefix}${suffix}', 50)
  location: location
  tags: tags
  sku: {
    name: registrySku
  }
  properties: {
    // No shared admin password: push with AcrPush, pull with AcrPull (roles.bicep).
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' = {
  // checkov:skip=CKV_AZURE_243: a private endpoint needs a VNet and private DNS zones this reference does not own; the studio and the worker use the public endpoint with Entra ID
  name: 'mlw-${prefix}'
  location: location
  tags: tags
  sku: {
    name: 'Basic'
    tier: 'Basic'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    friendlyName: 'MLOps for Python models (${prefix})'
    storageAccount: store.id
    keyVault: workspaceVault.id
    applicationInsights: appInsightsId
    containerRegistry: registry.id
    // The workspace's datastores use Entra ID, as the storage accounts allow nothing else.
    systemDatastoresAuthMode: 'identity'
    publicNetworkAccess: 'Enabled'
    v1LegacyMode: false
  }
}

output workspaceName string = workspace.name
output workspaceId string = workspace.id
output workspacePrincipalId string = workspace.identity.principalId
output registryName string = registry.name
output registryLoginServer string = registry.properties.loginServer
output appVaultName string = appVault.name
output appVaultUri string = appVault.properties.vaultUri
output workspaceVaultName string = workspaceVault.name
output workspaceStoreName string = store.name
