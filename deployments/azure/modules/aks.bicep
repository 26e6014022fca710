// Production on AKS: the cluster, the Azure ML extension (inference router), and the cluster
// attached to the workspace as a Kubernetes compute. Skipped when productionTarget='managed'.

param prefix string
param location string
param tags object
param workspaceName string
param logAnalyticsId string
@description('Name of the attached compute (MLOPS_AZURE__KUBERNETES_COMPUTE).')
param computeName string = 'aks-production'
param nodeVmSize string
@minValue(1)
param nodeCount int
@description('Control-plane identity (resource id); it hands the kubelet identity to the nodes.')
param controlIdentityId string
param controlPrincipalId string
@description('Kubelet identity (name, resource id, client id, principal id): pulls images from ACR.')
param kubeletIdentityName string
param kubeletIdentityId string
param kubeletClientId string
param kubeletPrincipalId string
@description('true: the router serves HTTPS with the certificate below; false: plain HTTP, said explicitly with allowInsecureConnections.')
param inferenceTls bool = false
@description('Host name on the TLS certificate (with inferenceTls).')
param sslCname string = ''
@secure()
@description('PEM certificate chain, from Key Vault (main.bicep passes getSecret), never a literal.')
param sslCertPem string = ''
@secure()
@description('PEM private key, from Key Vault (main.bicep passes getSecret), never a literal.')
param sslKeyPem string = ''

resource kubelet 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: kubeletIdentityName
}

// Managed Identity Operator (f1a07417-d97a-45cb-824c-7a7467783830) for the control plane, on
// the kubelet identity only: AKS refuses a user-assigned kubelet identity it cannot assign.
resource controlAssignsKubelet 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(kubelet.id, controlIdentityId, 'f1a07417-d97a-45cb-824c-7a7467783830')
  scope: kubelet
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'f1a07417-d97a-45cb-824c-7a7467783830')
    principalId: controlPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource aks 'Microsoft.ContainerService/managedClusters@2024-02-01' = {
  // checkov:skip=CKV_AZURE_6: the API server takes Entra ID sign-ins only (local accounts off); authorized IP ranges depend on where the operators are
  // checkov:skip=CKV_AZURE_226: ephemeral OS disks need a VM size with a large enough cache; nodeVmSize is a parameter
  // checkov:skip=CKV_AZURE_227: host encryption must be registered on the subscription first (EncryptionAtHost feature)
  // checkov:skip=CKV_AZURE_168: 110 pods per node is the default and fits the scoring deployments (checkov wants >= 50; the default is not set explicitly)
  // checkov:skip=CKV_AZURE_171: automatic upgrades are set (patch channel); checkov reads only some channels
  // checkov:skip=CKV_AZURE_172: the secrets store CSI driver is not used: secrets reach pods by Azure ML secret injection
  name: 'aks-${prefix}'
  location: location
  tags: tags
  dependsOn: [
    controlAssignsKubelet
  ]
  sku: {
    name: 'Base'
    tier: 'Free'
  }
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${controlIdentityId}': {}
    }
  }
  properties: {
    dnsPrefix: 'aks-${prefix}'
    enableRBAC: true
    disableLocalAccounts: true
    aadProfile: {
      managed: true
      enableAzureRBAC: true
    }
    autoUpgradeProfile: {
      upgradeChannel: 'patch'
    }
    identityProfile: {
      kubeletidentity: {
        resourceId: kubeletIdentityId
        clientId: kubeletClientId
        objectId: kubeletPrincipalId
      }
    }
    networkProfile: {
      networkPlugin: 'azure'
      networkPolicy: 'azure'
      loadBalancerSku: 'standard'
    }
    addonProfiles: {
      omsagent: {
        enabled: true
        config: {
          logAnalyticsWorkspaceResourceID: logAnalyticsId
        }
      }
      azurepolicy: {
        enabled: true
      }
      kubeDashboard: {
        enabled: false
      }
    }
    agentPoolProfiles: [
      {
        name: 'system'
        mode: 'System'
        count: nodeCount
        vmSize: nodeVmSize
        osType: 'Linux'
        osDiskSizeGB: 128
        maxPods: 110
        type: 'VirtualMachineScaleSets'
      }
    ]
  }
}

// The Azure ML extension: its inference router (azureml-fe) fronts every online endpoint on
// the cluster. Training stays on the scale-to-zero AmlCompute cluster.
resource azureml 'Microsoft.KubernetesConfiguration/extensions@2023-05-01' = {
  name: 'azureml'
  scope: aks
  properties: {
    extensionType: 'Microsoft.AzureML.Kubernetes'
    autoUpgradeMinorVersion: true
    releaseTrain: 'stable'
    scope: {
      cluster: {
        releaseNamespace: 'azureml'
      }
    }
    configurationSettings: {
      enableTraining: 'False'
      enableInference: 'True'
      inferenceRouterServiceType: 'LoadBalancer'
      inferenceRouterHA: nodeCount >= 3 ? 'True' : 'False'
      // Explicit either way: HTTPS with a certificate, or plain HTTP by choice.
      allowInsecureConnections: inferenceTls ? 'False' : 'True'
      sslCname: inferenceTls ? sslCname : ''
      installNvidiaDevicePlugin: 'False'
      installDcgmExporter: 'False'
    }
    configurationProtectedSettings: {
      sslCertPemFile: inferenceTls ? sslCertPem : ''
      sslKeyPemFile: inferenceTls ? sslKeyPem : ''
    }
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

resource attached 'Microsoft.MachineLearningServices/workspaces/computes@2024-04-01' = {
  parent: workspace
  name: computeName
  location: location
  tags: tags
  dependsOn: [
    azureml
  ]
  properties: {
    computeType: 'Kubernetes'
    resourceId: aks.id
    properties: {
      namespace: 'azureml'
    }
  }
}

output computeName string = attached.name
output clusterName string = aks.name
