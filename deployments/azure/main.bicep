// The whole Azure estate of the `azure` profile, in one resource group:
//
//   data lake + Event Grid  ->  Azure ML workspace (Key Vault, ACR, App Insights, Log Analytics)
//   -> training cluster (scale to zero) -> production on AKS (or a managed online endpoint)
//   -> QA on Azure Container Instances in a private subnet (created per release by the flows)
//
// Deploy (after ci.bicep; see the README, "From an empty subscription to the first release"):
//   az deployment group create -g "$RG" -n mlops -f deployments/azure/main.bicep -p prefix=...
// Every output named MLOPS_AZURE__* is a setting of the `azure` profile (core/settings.py);
// deployments/azure/outputs_to_env.py prints them as `export` lines.

targetScope = 'resourceGroup'

@description('Short name used in every resource name (lowercase letters and digits).')
@minLength(3)
@maxLength(8)
param prefix string = 'mlops'
param location string = resourceGroup().location

@description('Resource id of the Event Grid relay function (.../sites/<app>/functions/<name>; the output relayFunctionId); empty until the relay\'s code is deployed: then only the system topic is created.')
param relayFunctionId string = ''
@description('Prefect API URL the Event Grid relay posts to; empty: no relay function app (the blob-watcher flow polls instead).')
param relayPrefectApiUrl string = ''
@description('The app setting the relay\'s Key Vault secret (prefect-api-credential) fills: PREFECT_API_KEY (Prefect Cloud) or PREFECT_API_AUTH_STRING (a self-hosted server).')
param relayCredentialSetting string = 'PREFECT_API_KEY'

// ---- cost-relevant parameters
@description('VM size of the training cluster nodes.')
param clusterVmSize string = 'Standard_DS3_v2'
@description('Most nodes the training cluster scales out to (it scales to 0 when idle).')
@minValue(1)
param clusterMaxNodes int = 2
@description('Seconds an idle training node is kept before it is released.')
@minValue(60)
param clusterIdleSeconds int = 300
@description('aks: production on an AKS cluster (always on); managed: a managed online endpoint (no cluster to run).')
@allowed([
  'aks'
  'managed'
])
param productionTarget string = 'aks'
@description('VM size of the AKS nodes (productionTarget=aks).')
param aksNodeVmSize string = 'Standard_D4s_v5'
@description('Number of AKS nodes (productionTarget=aks). 3 or more turns on the router\'s high availability.')
@minValue(1)
param aksNodeCount int = 2
@description('Instance type of each managed deployment (productionTarget=managed).')
param managedInstanceType string = 'Standard_DS3_v2'
@description('ACR SKU: Basic, Standard or Premium.')
param registrySku string = 'Basic'

// ---- AKS inference router TLS
@description('true: the AKS router serves HTTPS; its certificate and key are read from the project Key Vault (secrets aks-inference-tls-cert and aks-inference-tls-key, PEM). false: HTTP, by explicit choice.')
param aksInferenceTls bool = false
@description('Host name on the certificate (aksInferenceTls=true).')
param aksInferenceCname string = ''

var tags = {
  project: 'mlops-python'
  prefix: prefix
}
var suffix = uniqueString(resourceGroup().id)
var appVaultName = take('kv${prefix}app${suffix}', 24)
var environmentName = 'diabetes-train-env'

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    prefix: prefix
    location: location
    tags: tags
  }
}

module lake 'modules/lake.bicep' = {
  name: 'lake'
  params: {
    name: take('st${prefix}lake${suffix}', 24)
    location: location
    tags: tags
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module events 'modules/events.bicep' = {
  name: 'events'
  params: {
    location: location
    tags: tags
    lakeName: lake.outputs.name
    relayFunctionId: relayFunctionId
  }
}

module workspace 'modules/workspace.bicep' = {
  name: 'workspace'
  params: {
    prefix: prefix
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    registrySku: registrySku
    appVaultName: appVaultName
  }
}

module identities 'modules/identities.bicep' = {
  name: 'identities'
  params: {
    prefix: prefix
    location: location
    tags: tags
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    lakeName: lake.outputs.name
    workspaceStoreName: workspace.outputs.workspaceStoreName
    workspaceName: workspace.outputs.workspaceName
    registryName: workspace.outputs.registryName
    appVaultName: workspace.outputs.appVaultName
    qaIdentityName: 'id-${prefix}-qa'
    endpointIdentityName: 'id-${prefix}-endpoint'
    workerIdentityName: 'id-${prefix}-worker'
    vnetName: qaNetwork.outputs.vnetName
    workerPrincipalId: identities.outputs.workerPrincipalId
    computePrincipalId: identities.outputs.computePrincipalId
    endpointPrincipalId: identities.outputs.endpointPrincipalId
  }
}

// The Azure ML datastore batch scoring writes its outputs through, over the lake's batch
// container (identity-based: the compute and worker identities' lake roles cover it).
module batchDatastore 'modules/batch-datastore.bicep' = {
  name: 'batch-datastore'
  params: {
    workspaceName: workspace.outputs.workspaceName
    lakeName: lake.outputs.name
    containerName: lake.outputs.batchContainer
  }
}

module compute 'modules/compute.bicep' = {
  name: 'compute'
  params: {
    location: location
    tags: tags
    workspaceName: workspace.outputs.workspaceName
    vmSize: clusterVmSize
    maxNodes: clusterMaxNodes
    idleSeconds: clusterIdleSeconds
    identityId: identities.outputs.computeId
  }
}

resource appVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: appVaultName
}

module aks 'modules/aks.bicep' = if (productionTarget == 'aks') {
  name: 'aks'
  dependsOn: [
    roles
  ]
  params: {
    prefix: prefix
    location: location
    tags: tags
    workspaceName: workspace.outputs.workspaceName
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    nodeVmSize: aksNodeVmSize
    nodeCount: aksNodeCount
    controlIdentityId: identities.outputs.aksControlId
    controlPrincipalId: identities.outputs.aksControlPrincipalId
    kubeletIdentityName: 'id-${prefix}-endpoint'
    kubeletIdentityId: identities.outputs.endpointId
    kubeletClientId: identities.outputs.endpointClientId
    kubeletPrincipalId: identities.outputs.endpointPrincipalId
    inferenceTls: aksInferenceTls
    sslCname: aksInferenceCname
    // Key Vault references: the certificate never appears in a parameter or a log.
    sslCertPem: aksInferenceTls ? appVault.getSecret('aks-inference-tls-cert') : ''
    sslKeyPem: aksInferenceTls ? appVault.getSecret('aks-inference-tls-key') : ''
  }
}

module managedEndpoint 'modules/online-endpoint.bicep' = if (productionTarget == 'managed') {
  name: 'managed-endpoint'
  dependsOn: [
    roles
  ]
  params: {
    location: location
    tags: tags
    workspaceName: workspace.outputs.workspaceName
    name: '${prefix}-scoring-production'
    identityId: identities.outputs.endpointId
  }
}

// QA's private network: the QA container group gets a private IP in its `qa` subnet; the flow
// runs' groups (MLOPS_WORK_POOL=mlops-aci) join its `flows` subnet, a VM worker `workers`.
module qaNetwork 'modules/qa-network.bicep' = {
  name: 'qa-network'
  params: {
    prefix: prefix
    location: location
    tags: tags
  }
}

module relay 'modules/relay.bicep' = if (!empty(relayPrefectApiUrl)) {
  name: 'relay'
  params: {
    location: location
    tags: tags
    name: '${prefix}-relay-${suffix}'
    storageaccount: take('st${prefix}relay${suffix}', 24)
    prefectApiUrl: relayPrefectApiUrl
    credentialSetting: relayCredentialSetting
    appVaultName: workspace.outputs.appVaultName
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

// ---- the settings of the `azure` profile (MLOPS_AZURE__<NAME>)
output MLOPS_AZURE__SUBSCRIPTION_ID string = subscription().subscriptionId
output MLOPS_AZURE__RESOURCE_GROUP string = resourceGroup().name
output MLOPS_AZURE__LOCATION string = location
output MLOPS_AZURE__WORKSPACE string = workspace.outputs.workspaceName
output MLOPS_AZURE__STORAGE_ACCOUNT_URL string = lake.outputs.blobEndpoint
output MLOPS_AZURE__COMPUTE_NAME string = compute.outputs.name
output MLOPS_AZURE__ENVIRONMENT string = environmentName
output MLOPS_AZURE__REGISTRY string = workspace.outputs.registryLoginServer
output MLOPS_AZURE__KEY_VAULT_URL string = workspace.outputs.appVaultUri
output MLOPS_AZURE__QA_IDENTITY string = identities.outputs.qaId
output MLOPS_AZURE__ENDPOINT_IDENTITY string = identities.outputs.endpointId
output MLOPS_AZURE__ENDPOINT_PREFIX string = '${prefix}-scoring'
output MLOPS_AZURE__QA_SUBNET_ID string = qaNetwork.outputs.qaSubnetId
output MLOPS_AZURE__PRODUCTION_TARGET string = productionTarget == 'aks' ? 'kubernetes' : 'managed'
output MLOPS_AZURE__KUBERNETES_COMPUTE string = productionTarget == 'aks' ? 'aks-production' : ''
output MLOPS_AZURE__ONLINE_INSTANCE_TYPE string = productionTarget == 'aks' ? '' : managedInstanceType
// Flow runs on Azure Container Instances (MLOPS_WORK_POOL=mlops-aci) run as the worker identity.
output MLOPS_AZURE__WORKER_IDENTITY string = identities.outputs.workerId
output MLOPS_AZURE__WORKER_CLIENT_ID string = identities.outputs.workerClientId
// Their container groups join the `flows` subnet: the release flow reaches QA's private IP.
output MLOPS_AZURE__FLOW_SUBNET_ID string = qaNetwork.outputs.flowsSubnetId
// Batch scoring's parallel job binds its output folder to this datastore.
output MLOPS_AZURE__BATCH_DATASTORE string = batchDatastore.outputs.name

// ---- for the host of the Prefect worker (not settings): it signs in as this identity
output workerIdentityId string = identities.outputs.workerId
output workerClientId string = identities.outputs.workerClientId
@description('A VM worker (mlops-local pool) runs in this subnet (or a peered network): it smoke tests QA on its private IP.')
output workersSubnetId string = qaNetwork.outputs.workersSubnetId
output eventGridSubscribed bool = events.outputs.subscribed
@description('Deploy the relay\'s code (make relay-package), then pass this as relayFunctionId.')
output relayFunctionId string = empty(relayPrefectApiUrl) ? '' : relay.outputs.relayFunctionId
