// Storage account for the Functions host (AzureWebJobsStorage), Durable Functions
// (task hub queues, tables and lease blobs), SeatSync's own tables and the
// Flex Consumption deployment package container.
// Shared keys are disabled: every client, the platform included, authenticates
// with Microsoft Entra ID (the app's managed identity, see rbac.bicep).

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags applied to the account.')
param tags object = {}

@description('Replication. Standard_LRS is the default: the tables hold run state and reports, and a configuration the admin can re-import.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_LRS'

@description('Blob container that holds the deployment package of the Flex Consumption app.')
param deploymentContainerName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_35:Without a virtual network, Flex Consumption reaches storage from changing outbound addresses, so a deny-by-default firewall would block the app; shared keys are off and every request needs an Entra ID token with an RBAC role.
  //checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: no private endpoint by default, so the public endpoint stays enabled and is protected by Entra ID RBAC only (allowSharedKeyAccess false, allowBlobPublicAccess false).
  //checkov:skip=CKV_AZURE_206:Standard_LRS is the default on purpose: the account holds Durable Functions state, run reports and the configuration (which the admin keeps as YAML and can re-import), not billing data of record; ZRS/GRS/GZRS are one parameter away (storageSkuName).
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    dnsEndpointType: 'Standard'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output tableEndpoint string = 'https://${storage.name}.table.${environment().suffixes.storage}'
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
