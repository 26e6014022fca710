// The Event Grid -> Prefect relay: a Python function app on the Flex Consumption plan
// (deployments/azure/functions/blob_relay; code: `make relay-package`, then zip deploy).
// Its host storage is an account of its own reached with its identity (no keys); the
// Prefect credential is a Key Vault reference to the app vault, never a plain setting.
// Once the code is deployed, pass the output relayFunctionId to main.bicep to subscribe it.

param location string
param tags object
@description('Name of the function app (and prefix of its plan and storage).')
param name string
@description('Name of the relay\'s own storage account (3-24 lowercase letters and digits).')
param storageaccount string
@description('Prefect API URL the relay posts to (a Cloud workspace URL or a server\'s .../api).')
param prefectApiUrl string
@description('PREFECT_API_KEY (Prefect Cloud) or PREFECT_API_AUTH_STRING (a self-hosted server with basic auth): the app setting the vault secret fills.')
@allowed([
  'PREFECT_API_KEY'
  'PREFECT_API_AUTH_STRING'
])
param credentialSetting string = 'PREFECT_API_KEY'
@description('Name of the app vault secret holding the Prefect credential.')
param credentialSecretName string = 'prefect-api-credential'
@description('The app Key Vault (holds the credential secret).')
param appVaultName string
@description('Application Insights of the estate.')
param appInsightsId string
@description('The landing container whose new blobs the relay announces.')
param landingContainer string = 'landing'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageaccount
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    // checkov:skip=CKV_AZURE_206: the relay's host state (locks, keys, the code package) is rebuilt by a redeploy; replication would protect nothing of value
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // checkov:skip=CKV_AZURE_59: the Functions host reaches its storage without a VNet on this plan; Entra ID only, keys off
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // checkov:skip=CKV_AZURE_35: as above: no VNet in this estate; the account takes Entra ID tokens only
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
      }
    }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource package 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: 'package'
  properties: {
    publicAccess: 'None'
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: appVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: last(split(appInsightsId, '/'))
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${name}-plan'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    // checkov:skip=CKV_AZURE_225: a zone outage delays announcements, loses none: Event Grid keeps retrying a delivery for 24 h
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // checkov:skip=CKV_AZURE_222: Event Grid delivers over the internet to this endpoint (it validates it and signs in with the function key)
    publicNetworkAccess: 'Enabled'
    // checkov:skip=CKV_AZURE_17: Event Grid presents no client certificate; the function key authenticates it
    clientCertEnabled: false
    siteConfig: {
      // checkov:skip=CKV_AZURE_212: instances start on demand; Event Grid retries a delivery that found none
      // checkov:skip=CKV_AZURE_213: no load balancer routes around a sick instance on this plan; a failed delivery is retried
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'PREFECT_API_URL'
          value: prefectApiUrl
        }
        {
          name: 'MLOPS_LANDING_CONTAINER'
          value: landingContainer
        }
        {
          name: credentialSetting
          value: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${credentialSecretName})'
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${package.name}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: 40
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Storage Blob Data Owner (b7e6dc6d-f1e8-4753-8033-0f276bb0955b) for the app's identity on its
// own storage account only: the Functions host keeps its locks, keys and code package there.
resource relayOwnsItsStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, app.id, 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Key Vault Secrets User (4633458b-17de-408a-b874-0445c86b69e6) for the app's identity on the
// app vault: the platform resolves the credential's Key Vault reference with it.
resource relayReadsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, app.id, '4633458b-17de-408a-b874-0445c86b69e6')
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

output appName string = app.name
@description('Pass to main.bicep as relayFunctionId once the code is deployed.')
output relayFunctionId string = '${app.id}/functions/blob_created'
