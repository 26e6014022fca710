// CI's identity: deployed ONCE by a person (Owner, or Contributor + Role Based Access Control
// Administrator, on the resource group), before main.bicep. GitHub Actions then signs in as it
// with the OIDC token of its own workflow run: no client secret exists anywhere.
//
//   az deployment group create -g "$RG" -f deployments/azure/ci.bicep \
//     -p githubRepository=<owner>/<repo>
//
// Its outputs are the three GitHub secrets: AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_SUBSCRIPTION_ID.

targetScope = 'resourceGroup'

@description('Short name used in every resource name (lowercase letters and digits).')
@minLength(3)
@maxLength(8)
param prefix string = 'mlops'
param location string = resourceGroup().location
@description('GitHub repository (owner/name) whose workflows sign in as the CI identity.')
param githubRepository string

// Built-in role definition ids.
var contributor = 'b24988ac-6180-42a0-ab88-20f7382dd24c'
var rbacAdministrator = 'f58310d9-a9f6-439a-9e8d-f62e7b41a168'
// The roles main.bicep grants (modules/roles.bicep, aks.bicep, events.bicep, relay.bicep): CI may grant
// these and no other.
var grantable = join([
  'f6c7c914-8db3-469d-8ca1-694a8f32e121' // AzureML Data Scientist
  'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
  '8311e382-0749-4cb8-b61a-304f252e45ec' // AcrPush
  '7f951dda-4ed3-4680-a7ca-43fe172d538d' // AcrPull
  'fb382eab-e894-4461-af04-94435c366c3f' // Container Registry Tasks Contributor
  '5d977122-f97e-4b4d-a52f-6b43003ddb4d' // Azure Container Instances Contributor Role
  'f1a07417-d97a-45cb-824c-7a7467783830' // Managed Identity Operator
  'b86a8fe4-44ce-4948-aee5-eccb2c155cd7' // Key Vault Secrets Officer
  '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner (the relay's own storage)
  '4d97b98b-1d4f-4787-a291-c67834d212e7' // Network Contributor (the worker, on the qa and flows subnets)
], ', ')

resource ci 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${prefix}-ci'
  location: location
}

// Pushes to main: what-if, then deploy.
resource ciMain 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = {
  parent: ci
  name: 'github-main'
  properties: {
    issuer: 'https://token.actions.githubusercontent.com'
    subject: 'repo:${githubRepository}:ref:refs/heads/main'
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}

// Pull requests of the repository itself (forks get no token): what-if only. Azure refuses
// concurrent writes of federated credentials under one identity, hence dependsOn.
resource ciPullRequests 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = {
  parent: ci
  name: 'github-pull-requests'
  dependsOn: [
    ciMain
  ]
  properties: {
    issuer: 'https://token.actions.githubusercontent.com'
    subject: 'repo:${githubRepository}:pull_request'
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}

// Creates and changes the resources of main.bicep, in this resource group and nowhere else.
resource ciDeploys 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, ci.id, contributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', contributor)
    principalId: ci.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Applies main.bicep's role assignments, and only those roles: the condition refuses granting
// or removing any other role (Owner, User Access Administrator, this role itself, ...).
resource ciGrantsTheseRolesOnly 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, ci.id, rbacAdministrator)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', rbacAdministrator)
    principalId: ci.properties.principalId
    principalType: 'ServicePrincipal'
    conditionVersion: '2.0'
    condition: '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${grantable}})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${grantable}}))'
  }
}

output AZURE_CLIENT_ID string = ci.properties.clientId
output AZURE_TENANT_ID string = subscription().tenantId
output AZURE_SUBSCRIPTION_ID string = subscription().subscriptionId
