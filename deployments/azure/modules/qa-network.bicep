// QA's private network: the release flow creates the QA container group here, with a private
// IP only (backends/azure/aci.py). The scoring service speaks plain HTTP and QA's key travels
// with every smoke-test request, so the group never gets a public address: only what runs
// inside this virtual network reaches it: the flows' worker in the `workers` subnet, or (with
// MLOPS_WORK_POOL=mlops-aci) the flow run's own container group in the `flows` subnet, which is
// where the release flow and its smoke test then run.

param prefix string
param location string
param tags object
@description('Address space of the virtual network.')
param addressPrefix string = '10.20.0.0/16'
@description('The QA subnet, delegated to Azure Container Instances.')
param qaSubnetPrefix string = '10.20.1.0/24'
@description('Where the flows\' worker runs (it smoke tests QA); a VM, container or pod joins it.')
param workersSubnetPrefix string = '10.20.2.0/24'
@description('The flow runs\' container groups (MLOPS_WORK_POOL=mlops-aci), delegated to Azure Container Instances.')
param flowsSubnetPrefix string = '10.20.3.0/24'

// Inbound: the scoring port from inside the virtual network only; the default rules deny the
// internet. Outbound stays open (image pulls from ACR, Key Vault).
resource qaNsg 'Microsoft.Network/networkSecurityGroups@2023-09-01' = {
  name: 'nsg-${prefix}-qa'
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'scoring-from-the-vnet'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: 'VirtualNetwork'
          sourcePortRange: '*'
          destinationAddressPrefix: qaSubnetPrefix
          destinationPortRange: '5001'
        }
      }
      {
        name: 'nothing-else-inbound'
        properties: {
          priority: 4096
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: '*'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

resource workersNsg 'Microsoft.Network/networkSecurityGroups@2023-09-01' = {
  name: 'nsg-${prefix}-workers'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

// Flow runs call out (Prefect API, Key Vault, Blob, Azure ML, QA's private IP) and serve
// nothing: every inbound packet is refused, including the default rules' VirtualNetwork and
// load-balancer allowances; outbound keeps the default rules (open).
resource flowsNsg 'Microsoft.Network/networkSecurityGroups@2023-09-01' = {
  name: 'nsg-${prefix}-flows'
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'nothing-inbound'
        properties: {
          priority: 4096
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: '*'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2023-09-01' = {
  name: 'vnet-${prefix}'
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'qa'
        properties: {
          addressPrefix: qaSubnetPrefix
          networkSecurityGroup: {
            id: qaNsg.id
          }
          // ACI places container groups only in a subnet delegated to it.
          delegations: [
            {
              name: 'aci'
              properties: {
                serviceName: 'Microsoft.ContainerInstance/containerGroups'
              }
            }
          ]
        }
      }
      {
        // A VM worker (or anything not in ACI): not delegated, since a delegated subnet takes
        // only container groups.
        name: 'workers'
        properties: {
          addressPrefix: workersSubnetPrefix
          networkSecurityGroup: {
            id: workersNsg.id
          }
        }
      }
      {
        // prefect-azure's ACI worker puts each flow run's container group here
        // (MLOPS_AZURE__FLOW_SUBNET_ID), so the release flow reaches QA's private IP.
        name: 'flows'
        properties: {
          addressPrefix: flowsSubnetPrefix
          networkSecurityGroup: {
            id: flowsNsg.id
          }
          delegations: [
            {
              name: 'aci'
              properties: {
                serviceName: 'Microsoft.ContainerInstance/containerGroups'
              }
            }
          ]
        }
      }
    ]
  }
}

output vnetId string = vnet.id
output vnetName string = vnet.name
output qaSubnetId string = '${vnet.id}/subnets/qa'
output workersSubnetId string = '${vnet.id}/subnets/workers'
output flowsSubnetId string = '${vnet.id}/subnets/flows'
