// Every role assignment of the estate except two that must exist before their resource (the
// AKS control plane's, in aks.bicep, and Event Grid's dead-letter writer, in events.bicep) and
// CI's own (ci.bicep, deployed once by a person: CI cannot grant itself rights).
// Least privilege: the narrowest built-in role, on the narrowest scope that works; none at
// subscription scope, no Owner or User Access Administrator anywhere. Each says why.
// tests/unit/deployments/azure/test_bicep.py asserts this list.

param lakeName string
param workspaceStoreName string
param workspaceName string
param registryName string
param appVaultName string
param qaIdentityName string
param endpointIdentityName string
param workerIdentityName string
@description('The virtual network of qa-network.bicep (its subnets qa and flows).')
param vnetName string
param workerPrincipalId string
param computePrincipalId string
param endpointPrincipalId string

// Built-in role definition ids (the same in every tenant).
var role = {
  azureMlDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  acrPush: '8311e382-0749-4cb8-b61a-304f252e45ec'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  acrTasksContributor: 'fb382eab-e894-4461-af04-94435c366c3f'
  aciContributor: '5d977122-f97e-4b4d-a52f-6b43003ddb4d'
  managedIdentityOperator: 'f1a07417-d97a-45cb-824c-7a7467783830'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  networkContributor: '4d97b98b-1d4f-4787-a291-c67834d212e7'
}

resource lake 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: lakeName
}
resource workspaceStore 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: workspaceStoreName
}
resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}
resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}
resource appVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: appVaultName
}
resource qaIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: qaIdentityName
}
resource endpointIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: endpointIdentityName
}
resource workerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: workerIdentityName
}
resource vnet 'Microsoft.Network/virtualNetworks@2023-09-01' existing = {
  name: vnetName
}
resource qaSubnet 'Microsoft.Network/virtualNetworks/subnets@2023-09-01' existing = {
  parent: vnet
  name: 'qa'
}
resource flowsSubnet 'Microsoft.Network/virtualNetworks/subnets@2023-09-01' existing = {
  parent: vnet
  name: 'flows'
}

// ---------------------------------------------------------------- the Prefect worker
// Submits training jobs, registers models, creates the training environment and the online
// endpoints and deployments; not compute or workspace changes (the role excludes them).
resource workerOnWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, workerPrincipalId, role.azureMlDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.azureMlDataScientist)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Reads landing, writes curated and quarantine, moves blobs between them.
resource workerOnLake 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(lake.id, workerPrincipalId, role.storageBlobDataContributor)
  scope: lake
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageBlobDataContributor)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Pushes the scoring image of each release.
resource workerPushes 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, workerPrincipalId, role.acrPush)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.acrPush)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Builds the scoring image inside the registry (ACR Tasks: listBuildSourceUploadUrl, scheduleRun,
// runs read and listLogSasUrl; MLOPS_AZURE__IMAGE_BUILD=acr-task, the default on the ACI pool,
// whose flow runs have no Docker engine). The narrowest built-in role with those actions; the
// run itself pushes, so it grants no image push or pull.
resource workerBuildsInRegistry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, workerPrincipalId, role.acrTasksContributor)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.acrTasksContributor)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Creates, updates and deletes the QA container group, and with MLOPS_WORK_POOL=mlops-aci one
// container group per flow run (prefect-azure's worker creates it as an ARM deployment in this
// group). ACI has no narrower scope than the resource group for a group that does not exist yet.
resource workerRunsQa 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, workerPrincipalId, role.aciContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.aciContributor)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Gives the QA container group its pull identity (Azure checks assign/action on it).
resource workerAssignsQaIdentity 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(qaIdentity.id, workerPrincipalId, role.managedIdentityOperator)
  scope: qaIdentity
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.managedIdentityOperator)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Gives the production online endpoint its identity.
resource workerAssignsEndpointIdentity 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(endpointIdentity.id, workerPrincipalId, role.managedIdentityOperator)
  scope: endpointIdentity
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.managedIdentityOperator)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The Azure Container Instances worker (MLOPS_WORK_POOL=mlops-aci) runs each flow run as a
// container group with this same identity: assigning it needs assign/action on it. The groups
// themselves come from the ACI Contributor role above; their image pull uses AcrPush.
resource workerAssignsItself 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workerIdentity.id, workerPrincipalId, role.managedIdentityOperator)
  scope: workerIdentity
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.managedIdentityOperator)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Puts the QA container group in the `qa` subnet: ACI checks
// Microsoft.Network/virtualNetworks/subnets/join/action on the subnet itself when a group names
// it. No built-in role narrower than Network Contributor holds that action (a custom role
// would need roleDefinitions/write, which CI's conditioned role does not grant), so it is
// granted on this one subnet, not on the network or the group.
resource workerJoinsQaSubnet 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(qaSubnet.id, workerPrincipalId, role.networkContributor)
  scope: qaSubnet
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.networkContributor)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// With MLOPS_WORK_POOL=mlops-aci, puts each flow run's container group in the `flows` subnet
// (MLOPS_AZURE__FLOW_SUBNET_ID), from where the release flow reaches QA's private IP: the same
// join/action, on this subnet only.
resource workerJoinsFlowsSubnet 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(flowsSubnet.id, workerPrincipalId, role.networkContributor)
  scope: flowsSubnet
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.networkContributor)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Creates the QA key on the first release and mirrors the production endpoint's keys, which
// deployments then reference; only in the project's vault, not in Azure ML's.
resource workerWritesSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appVault.id, workerPrincipalId, role.keyVaultSecretsOfficer)
  scope: appVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.keyVaultSecretsOfficer)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Uploads the training code snapshot and downloads registered models: Azure ML's storage
// takes Entra ID only (systemDatastoresAuthMode identity).
resource workerOnWorkspaceStore 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspaceStore.id, workerPrincipalId, role.storageBlobDataContributor)
  scope: workspaceStore
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageBlobDataContributor)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------- the training cluster
// Reads the curated training set a job gets as input.
resource computeOnLake 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(lake.id, computePrincipalId, role.storageBlobDataContributor)
  scope: lake
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageBlobDataContributor)
    principalId: computePrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Writes job outputs (the model folder) and reads code snapshots in Azure ML's own storage.
resource computeOnWorkspaceStore 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspaceStore.id, computePrincipalId, role.storageBlobDataContributor)
  scope: workspaceStore
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageBlobDataContributor)
    principalId: computePrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Pulls the training environment's image, which Azure ML builds into this registry.
resource computePulls 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, computePrincipalId, role.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.acrPull)
    principalId: computePrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------- production scoring
// The AKS nodes (kubelet) or the managed endpoint pull the scoring image.
resource endpointPulls 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, endpointPrincipalId, role.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.acrPull)
    principalId: endpointPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Azure ML's secret injection reads the keys a deployment references, as this identity.
resource endpointReadsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appVault.id, endpointPrincipalId, role.keyVaultSecretsUser)
  scope: appVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.keyVaultSecretsUser)
    principalId: endpointPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------- QA
// The QA container group pulls the scoring image.
resource qaPulls 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, qaIdentity.id, role.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.acrPull)
    principalId: qaIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}
