// Production without AKS: a managed online endpoint (productionTarget='managed'). The release
// adds one deployment per model version to it, as on AKS.

param location string
param tags object
param workspaceName string
@description('Endpoint name: <prefix>-production, unique in the region.')
param name string
@description('Identity the deployments run as (AcrPull, Key Vault Secrets User).')
param identityId string

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

resource endpoint 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints@2024-04-01' = {
  parent: workspace
  name: name
  location: location
  tags: tags
  kind: 'Managed'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    authMode: 'Key'
    publicNetworkAccess: 'Enabled'
    description: 'Scoring service (one deployment per release)'
  }
}

output name string = endpoint.name
