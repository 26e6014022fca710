// The Azure ML datastore batch scoring writes through (MLOPS_AZURE__BATCH_DATASTORE): a blob
// datastore over the lake's batch container. The parallel job binds its output folder to
// azureml://datastores/<name>/paths/<folder> (backends/azure/batch.py), so predictions and
// lineage land in the lake beside the input.
//
// Identity-based: no account key or SAS is stored (the lake refuses shared keys anyway). A job
// reads and writes as the compute cluster's identity, the flows as the worker's: both hold
// Storage Blob Data Contributor on the lake (roles.bicep). Studio browsing uses the signed-in
// person's own rights (serviceDataAccessAuthIdentity None: the workspace's identity gets no
// access to the lake).
// Shape: Microsoft.MachineLearningServices stable 2024-04-01, AzureBlobDatastore with
// NoneDatastoreCredentials (Azure/azure-rest-api-specs, .../stable/2024-04-01/mfe.json).

param workspaceName string
@description('The lake storage account (modules/lake.bicep).')
param lakeName string
@description('The lake container batch files and their predictions live in (MLOPS_BATCH_CONTAINER).')
param containerName string
@description('Datastore name (MLOPS_AZURE__BATCH_DATASTORE).')
param name string = 'batch'

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

resource datastore 'Microsoft.MachineLearningServices/workspaces/datastores@2024-04-01' = {
  parent: workspace
  name: name
  properties: {
    datastoreType: 'AzureBlob'
    description: 'Batch scoring: files to score and their predictions (the lake\'s ${containerName} container)'
    accountName: lakeName
    containerName: containerName
    endpoint: environment().suffixes.storage
    protocol: 'https'
    subscriptionId: subscription().subscriptionId
    resourceGroup: resourceGroup().name
    credentials: {
      credentialsType: 'None'
    }
    serviceDataAccessAuthIdentity: 'None'
  }
}

output name string = datastore.name
