// The user-assigned identities of the running system. Each one does one job; roles.bicep says
// what each may do. CI's identity is in ../ci.bicep.

param prefix string
param location string
param tags object

// The Prefect worker that runs the flows (on a VM, container or AKS pod given this identity).
resource worker 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${prefix}-worker'
  location: location
  tags: tags
}

// The Azure ML compute cluster's nodes: they read training data and write job outputs.
resource compute 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${prefix}-compute'
  location: location
  tags: tags
}

// Production scoring: the AKS kubelet (image pulls) and the online endpoint (secret injection).
resource endpoint 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${prefix}-endpoint'
  location: location
  tags: tags
}

// The AKS control plane: it only needs to hand the kubelet identity to the nodes.
resource aksControl 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${prefix}-aks'
  location: location
  tags: tags
}

// The QA container group pulls its image from ACR as this identity (no registry password).
resource qa 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${prefix}-qa'
  location: location
  tags: tags
}

output workerId string = worker.id
output workerPrincipalId string = worker.properties.principalId
output workerClientId string = worker.properties.clientId
output computeId string = compute.id
output computePrincipalId string = compute.properties.principalId
output endpointId string = endpoint.id
output endpointPrincipalId string = endpoint.properties.principalId
output endpointClientId string = endpoint.properties.clientId
output aksControlId string = aksControl.id
output aksControlPrincipalId string = aksControl.properties.principalId
output qaId string = qa.id
output qaPrincipalId string = qa.properties.principalId
