// SeatSync on Azure: one resource group with
//   - a Flex Consumption function app (Python 3.11) running as a user-assigned managed identity
//   - a storage account for the Functions host, Durable Functions and SeatSync's tables (no shared keys)
//   - a Key Vault (RBAC) for the Graph app secret, PSA credentials and the Teams webhook
//   - Application Insights on a Log Analytics workspace
// Deploy with `azd up` (see docs/deploy.md). Parameters come from main.parameters.json.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds the unique resource names.')
param environmentName string

@minLength(1)
@description('Azure region of every resource. Must offer Flex Consumption: az functionapp list-flexconsumption-locations')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create or reuse; default rg-<environmentName>.')
param resourceGroupName string = ''

@description('Application (client) id of the multi-tenant Entra app SeatSync uses for Microsoft Graph.')
@minLength(36)
@maxLength(36)
param graphClientId string

@description('Tenant id of the partner (MSP) tenant that owns the Entra app; empty for the tenant of this subscription.')
param graphPartnerTenantId string = ''

@description('Key Vault secret that holds the Graph app client secret.')
param graphClientSecretName string = 'graph-client-secret'

@description('App settings filled from Key Vault secrets, as [{settingName, secretName}]. Remove the PSAs you do not use.')
param secretSettings array = [
  {
    settingName: 'CW_PUBLIC_KEY'
    secretName: 'cw-public-key'
  }
  {
    settingName: 'CW_PRIVATE_KEY'
    secretName: 'cw-private-key'
  }
  {
    settingName: 'CW_CLIENT_ID'
    secretName: 'cw-client-id'
  }
  {
    settingName: 'AUTOTASK_USERNAME'
    secretName: 'autotask-username'
  }
  {
    settingName: 'AUTOTASK_SECRET'
    secretName: 'autotask-secret'
  }
  {
    settingName: 'AUTOTASK_INTEGRATION_CODE'
    secretName: 'autotask-integration-code'
  }
  {
    settingName: 'HALO_CLIENT_ID'
    secretName: 'halo-client-id'
  }
  {
    settingName: 'HALO_CLIENT_SECRET'
    secretName: 'halo-client-secret'
  }
  {
    settingName: 'TEAMS_WEBHOOK_URL'
    secretName: 'teams-webhook-url'
  }
]

@description('Application (client) id of the Entra app users sign in to the dashboard with (docs/deploy.md, sign-in and roles); empty: sign-in off, the dashboard refuses everyone.')
param dashboardClientId string = ''

@description('NCRONTAB schedule of the sync timer, in UTC (Flex Consumption has no time zone setting); empty for daily at 02:00.')
param syncSchedule string = ''

@description('Prefix of the tables SeatSync creates.')
param tablePrefix string = 'seatsync'

@description('Memory of each function instance in MB; billing is per GB-second of this size.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the app may scale out to (Flex Consumption accepts 40-1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Replication of the storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSkuName string = 'Standard_LRS'

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Daily Log Analytics ingestion cap in GB (protects the bill from runaway logging).')
@minValue(1)
param logDailyQuotaGb int = 5

@description('Object id of the person or group that sets the Key Vault secrets (azd fills in the signed-in user); empty for none.')
param principalId string = ''

@description('Kind of principal principalId is.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Extra tags for every resource.')
param tags object = {}

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var allTags = union(tags, {
  'azd-env-name': environmentName
  application: 'seatsync'
})
var functionAppName = 'func-seatsync-${resourceToken}'
// azd passes an unset environment variable as an empty string: fall back to the defaults here.
var partnerTenantId = empty(graphPartnerTenantId) ? tenant().tenantId : graphPartnerTenantId
var schedule = empty(syncSchedule) ? '0 0 2 * * *' : syncSchedule
var deploymentContainerName = 'app-package'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: allTags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-seatsync-${resourceToken}'
    location: location
    tags: allTags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-seatsync-${resourceToken}'
    applicationInsightsName: 'appi-seatsync-${resourceToken}'
    location: location
    tags: allTags
    retentionInDays: logRetentionInDays
    dailyQuotaGb: logDailyQuotaGb
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'stseatsync${take(resourceToken, 13)}'
    location: location
    tags: allTags
    skuName: storageSkuName
    deploymentContainerName: deploymentContainerName
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-seatsync-${take(resourceToken, 10)}'
    location: location
    tags: allTags
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appPrincipalId: identity.outputs.principalId
    operatorPrincipalId: principalId
    operatorPrincipalType: principalType
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  dependsOn: [
    rbac
  ]
  params: {
    name: functionAppName
    planName: 'plan-seatsync-${resourceToken}'
    location: location
    tags: allTags
    serviceName: 'api'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultName: keyVault.outputs.name
    keyVaultUri: keyVault.outputs.uri
    graphClientId: graphClientId
    graphPartnerTenantId: partnerTenantId
    graphClientSecretName: graphClientSecretName
    syncSchedule: schedule
    tablePrefix: tablePrefix
    secretSettings: secretSettings
    dashboardClientId: dashboardClientId
    dashboardTenantId: partnerTenantId
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
}

// azd stores these outputs in the environment (.azure/<env>/.env).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output SEATSYNC_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.workspaceName
output SEATSYNC_FUNCTION_URL string = functionApp.outputs.url
output SEATSYNC_SYNC_ENDPOINT string = '${functionApp.outputs.url}/api/sync'
output SEATSYNC_DASHBOARD_URL string = '${functionApp.outputs.url}/api/dashboard'
