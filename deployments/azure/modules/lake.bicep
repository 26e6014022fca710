// The data lake: one storage account, reached only with Entra ID (no shared keys), with
// the containers the flows use, and the Event Grid system topic that announces new data.

@description('Name of the storage account (3-24 lowercase letters and digits).')
param name string
param location string
param tags object
@description('Log Analytics workspace that receives the account\'s blob logs.')
param logAnalyticsId string
@description('Days a deleted blob or container can be restored.')
param softDeleteDays int = 14

// landing: new files; curated: the merged training set and watcher marks; quarantine: rejected
// files with their reason; dead-letter: Event Grid deliveries that failed for good;
// collected: scoring inputs kept for drift analysis; flow-code: the flows' code, one folder per
// commit, pushed by `mlops deploy` and pulled by each flow run on Azure Container Instances;
// batch: files to batch score and their predictions (flows/batch_scoring.py; the Azure ML
// datastore of batch-datastore.bicep is registered over it).
var batchContainer = 'batch'
var containers = [
  'landing'
  'curated'
  'quarantine'
  'dead-letter'
  'collected'
  'flow-code'
  batchContainer
]

resource lake 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_GRS'
  }
  properties: {
    accessTier: 'Hot'
    // Every client (flows, compute, Event Grid) signs in with Entra ID: no account keys, no SAS.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // checkov:skip=CKV_AZURE_59: reached from outside Azure (worker, CI) without a VNet; Entra ID only, shared keys and anonymous blob access off
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // checkov:skip=CKV_AZURE_35: the Prefect worker and CI run outside any VNet of this estate; access is Entra ID only (shared keys off), and a private endpoint needs a network this template does not own
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

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: lake
  name: 'default'
  properties: {
    // A retraining reads what landed; versions and soft delete make any overwrite or delete
    // of data reversible.
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    changeFeed: {
      enabled: true
      retentionInDays: 30
    }
  }
}

resource lakeContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in containers: {
  parent: blobs
  name: container
  properties: {
    publicAccess: 'None'
  }
}]

// Who read or wrote what, for the audit trail of training data.
resource blobLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'blob-logs'
  scope: blobs
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

output id string = lake.id
output name string = lake.name
output blobEndpoint string = lake.properties.primaryEndpoints.blob
output batchContainer string = batchContainer
