// The SeatSync function app on a Flex Consumption (FC1) plan, Python 3.11.
// - Runs as the user-assigned managed identity: host storage is identity-based
//   (AzureWebJobsStorage__accountName/__credential/__clientId, no connection string),
//   the deployment package container is read with the same identity, and Key Vault
//   references resolve with it (keyVaultReferenceIdentity).
// - Every secret app setting is a Key Vault reference; none holds a value.
// - HTTPS only, TLS 1.2 minimum.

@description('Function app name; also the host name <name>.azurewebsites.net.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags applied to the plan and the app.')
param tags object = {}

@description('azd service name the app is tagged with (azure.yaml services key).')
param serviceName string = 'api'

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Storage account used for AzureWebJobsStorage and Durable Functions.')
param storageAccountName string

@description('Table endpoint SeatSync keeps its configuration and sync state in.')
param tableEndpoint string

@description('URL of the blob container holding the deployment package.')
param deploymentContainerUrl string

@description('Application Insights connection string (ingestion requires Entra ID auth).')
param applicationInsightsConnectionString string

@description('Key Vault name, used in Key Vault references.')
param keyVaultName string

@description('Key Vault URI (https://<name>.vault.azure.net/).')
param keyVaultUri string

@description('Application (client) id of the multi-tenant Entra app used for Microsoft Graph.')
param graphClientId string

@description('Tenant id of the partner (MSP) tenant that owns the Entra app.')
param graphPartnerTenantId string

@description('Key Vault secret holding the Graph app client secret.')
param graphClientSecretName string = 'graph-client-secret'

@description('NCRONTAB schedule of the daily sync, in UTC.')
param syncSchedule string = '0 0 2 * * *'

@description('Prefix of the SeatSync tables.')
param tablePrefix string = 'seatsync'

@description('App settings filled from Key Vault: [{settingName, secretName}].')
param secretSettings array = []

@description('Memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the app scales out to (Flex Consumption accepts 40-1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Application (client) id of the single-tenant Entra app the dashboard signs users in with (App Service Authentication); empty leaves sign-in off and the dashboard refuses everyone.')
param dashboardClientId string = ''

@description('Tenant whose users may sign in to the dashboard (the partner tenant).')
param dashboardTenantId string

@description('Key Vault secret holding the client secret of the dashboard sign-in app.')
param dashboardClientSecretName string = 'dashboard-client-secret'

var publicUrl = 'https://${name}.azurewebsites.net'

var platformSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storageAccountName
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
]

var seatsyncSettings = [
  {
    name: 'SYNC_SCHEDULE'
    value: syncSchedule
  }
  {
    name: 'SEATSYNC_TABLE_ENDPOINT'
    value: tableEndpoint
  }
  {
    name: 'SEATSYNC_TABLE_PREFIX'
    value: tablePrefix
  }
  {
    name: 'SEATSYNC_KEY_VAULT_URL'
    value: keyVaultUri
  }
  {
    name: 'SEATSYNC_PUBLIC_URL'
    value: publicUrl
  }
  {
    name: 'GRAPH_CLIENT_ID'
    value: graphClientId
  }
  {
    name: 'GRAPH_PARTNER_TENANT_ID'
    value: graphPartnerTenantId
  }
  {
    name: 'GRAPH_CLIENT_SECRET'
    value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${graphClientSecretName})'
  }
  {
    // App Service Authentication reads the dashboard sign-in app's secret from this setting.
    name: 'MICROSOFT_PROVIDER_AUTHENTICATION_SECRET'
    value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${dashboardClientSecretName})'
  }
]

var keyVaultSettings = [for setting in secretSettings: {
  name: setting.settingName
  value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${setting.secretName})'
}]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225:Zone redundancy on Flex Consumption requires always-ready instances (a billed baseline around the clock) for a job that runs once a day and scales to zero; a missed run is retried by the next schedule or a manual POST /api/sync.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_78:Flex Consumption supports no FTP/FTPS publishing (ftpsState is a deprecated property on this plan); code is deployed only to the blob container with the managed identity.
  //checkov:skip=CKV_AZURE_222:The app must take POST /api/sync from the admin (portal or curl) and has no virtual network by default; the endpoint requires a function key and HTTPS (TLS 1.2+).
  //checkov:skip=CKV_AZURE_17:Client certificates are a platform certificate feature that Flex Consumption does not support; callers authenticate with a function key over HTTPS.
  //checkov:skip=CKV_AZURE_212:A minimum instance count means always-ready instances billed around the clock; SeatSync is a daily batch that scales to zero, and Durable Functions resumes work after an instance loss.
  //checkov:skip=CKV_AZURE_213:Health check probes standing instances behind the load balancer; this app scales to zero between runs and its work is driven by a timer and Durable queues, so there is no standing instance to evict.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      appSettings: concat(platformSettings, seatsyncSettings, keyVaultSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Sign-in for the dashboard: App Service Authentication with the Entra ID provider. Requests
// without a session still reach the app (function-key API calls must), but the platform then
// sets no principal: the dashboard answers 401 with a sign-in link, and the API needs its key.
// Signed-in requests carry x-ms-client-principal (with the user's app roles), which the
// platform strips from anything a client sends.
// checkov reads every Microsoft.Web/sites/config resource as a site's siteConfig; this one is the
// authsettingsV2 document, which has none of those properties. The site (functionApp above) is
// checked for them, with its own justified skips.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(dashboardClientId)) {
  //checkov:skip=CKV_AZURE_13:This resource is the App Service Authentication (authsettingsV2, Entra ID provider) the check asks for; checkov looks for the retired v1 'enabled' property.
  //checkov:skip=CKV_AZURE_63:HTTP logging is a siteConfig property of the site, not of the authsettingsV2 document; the app logs to Application Insights.
  //checkov:skip=CKV_AZURE_65:Detailed error messages are a siteConfig property of the site, not of the authsettingsV2 document.
  //checkov:skip=CKV_AZURE_66:Failed request tracing is a siteConfig property of the site, not of the authsettingsV2 document.
  //checkov:skip=CKV_AZURE_80:.NET Framework version is a siteConfig property of the site (a Python app), not of the authsettingsV2 document.
  //checkov:skip=CKV_AZURE_88:Azure Files mounts are site properties, not of the authsettingsV2 document; Flex Consumption deploys from a blob container.
  //checkov:skip=CKV_AZURE_222:Public network access is a property of the site justified on functionApp, not of the authsettingsV2 document.
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          openIdIssuer: '${environment().authentication.loginEndpoint}${dashboardTenantId}/v2.0'
          clientId: dashboardClientId
          clientSecretSettingName: 'MICROSOFT_PROVIDER_AUTHENTICATION_SECRET'
        }
        validation: {
          allowedAudiences: [
            dashboardClientId
            'api://${dashboardClientId}'
          ]
        }
        login: {
          disableWWWAuthenticate: false
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
      preserveUrlFragmentsForLogins: false
      cookieExpiration: {
        convention: 'FixedTime'
        timeToExpiration: '08:00:00'
      }
      nonce: {
        validateNonce: true
      }
    }
  }
}

output id string = functionApp.id
output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
output url string = 'https://${functionApp.properties.defaultHostName}'
