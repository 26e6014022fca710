// Logs and metrics: one Log Analytics workspace, and the Application Insights component the
// Azure ML workspace requires (workspace-based: classic components are retired).

param prefix string
param location string
param tags object
@description('Days logs are kept (30 is the cheapest retention).')
param retentionDays int = 30

resource logs 'Microsoft.OperationalInsights/workspaces@2022-10-01' = {
  name: 'log-${prefix}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionDays
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${prefix}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    // Telemetry is sent with Entra ID tokens, not the instrumentation key alone.
    DisableLocalAuth: true
  }
}

output logAnalyticsId string = logs.id
output appInsightsId string = insights.id
