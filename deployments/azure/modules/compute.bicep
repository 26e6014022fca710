// The training cluster: scales to zero when idle, so it costs nothing between retrainings.

param location string
param tags object
param workspaceName string
@description('Name the flows submit jobs to (MLOPS_AZURE__COMPUTE_NAME).')
param name string = 'cpu-cluster'
param vmSize string
@minValue(1)
param maxNodes int
@description('Seconds an idle node is kept before it is released.')
@minValue(60)
param idleSeconds int
@description('Resource id of the identity the nodes run as.')
param identityId string

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

resource cluster 'Microsoft.MachineLearningServices/workspaces/computes@2024-04-01' = {
  parent: workspace
  name: name
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    computeType: 'AmlCompute'
    // Only Entra ID identities may use it (no local keys).
    disableLocalAuth: true
    properties: {
      vmSize: vmSize
      vmPriority: 'Dedicated'
      osType: 'Linux'
      scaleSettings: {
        minNodeCount: 0
        maxNodeCount: maxNodes
        nodeIdleTimeBeforeScaleDown: 'PT${idleSeconds}S'
      }
      // Nobody logs into a training node.
      remoteLoginPortPublicAccess: 'Disabled'
    }
  }
}

output name string = cluster.name
