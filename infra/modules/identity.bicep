// User-assigned managed identity used by the function app for everything it
// reaches in Azure: host storage (AzureWebJobsStorage, Durable Functions),
// SeatSync's own tables, Key Vault references and Application Insights.
// A user-assigned identity (rather than the system-assigned one) exists before
// the app does, so its role assignments are in place when the app first starts.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags applied to the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
