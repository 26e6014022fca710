// QA's private network: the release flow creates the QA container group here, with a private
// IP only (backends/azure/aci.py). The scoring service speaks plain HTTP and QA's key travels
// with every smoke-test request, so the group never gets a public address: only what runs
// inside this virtual network (the flows' worker, in the `workers` subnet) reaches it.

param prefix string
param location string
param tags object
@description('Address space of the virtual network.')
param addressPrefix string = '10.20.0.0/16'
@description('The QA subnet, delegated to Azure Container Instances.')
param qaSubnetPrefix string = '10.20.1.0/24'
@description('Where the flows\' worker runs (it smoke tests QA); a VM, container or pod joins it.')
param workersSubnetPrefix string = '10.20.2.0/24'

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
        name: 'workers'
        properties: {
          addressPrefix: workersSubnetPrefix
          networkSecurityGroup: {
            id: workersNsg.id
          }
        }
      }
    ]
  }
}

output vnetId string = vnet.id
output qaSubnetId string = '${vnet.id}/subnets/qa'
output workersSubnetId string = '${vnet.id}/subnets/workers'
