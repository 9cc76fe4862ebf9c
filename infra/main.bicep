// Cordon on Azure: a user-assigned managed identity that is the bot's identity, reads Microsoft Graph and holds
// the state in Azure Table storage (no secret anywhere); the Azure Bot with its Teams channel; App Service on Linux
// running the container image; optional Log Analytics + Application Insights.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p namePrefix=cordon containerImage=<registry>/cordon:<tag>
//
// Outputs give the bot's endpoint and the ids `python app.py manifest` and `python app.py permissions --grant` need.

targetScope = 'resourceGroup'

@description('Prefix of every resource name (letters and digits, 3-11 characters).')
@minLength(3)
@maxLength(11)
param namePrefix string = 'cordon'

@description('Region of the resources (the Azure Bot itself is global).')
param location string = resourceGroup().location

@description('Container image to run, e.g. myregistry.azurecr.io/cordon:1.0.0 (pushed before the deployment).')
param containerImage string

@description('App Service plan SKU: Premium v3 for zone redundancy and scale-out.')
@allowed([ 'P0v3', 'P1v3', 'P2v3', 'P3v3' ])
param planSku string = 'P0v3'

@description('Instances of the web app (2 or more: zone redundancy, zero-downtime restarts; state is shared).')
@minValue(2)
@maxValue(30)
param instanceCount int = 2

@description('Place the plan\'s instances across availability zones (needs a region with zones).')
param zoneRedundant bool = true

@description('The Teams tenant(s) Cordon serves, as TOML (e.g. ["<tenant id>"]); default: this tenant.')
param allowedTenantsToml string = '["${tenant().tenantId}"]'

@description('Entra object ids (users or groups) of technicians and approvers, as TOML arrays.')
param techniciansToml string = '[]'
param approversToml string = '[]'

@description('Create Log Analytics and Application Insights.')
param enableMonitoring bool = true

@description('Name of an Azure Container Registry in this resource group to pull the image from with the identity (AcrPull is assigned); empty: a registry that needs no credentials.')
param acrName string = ''

@description('Bot pricing tier: F0 (free, standard channels such as Teams are free) or S1.')
@allowed([ 'F0', 'S1' ])
param botSku string = 'F0'

var suffix = uniqueString(resourceGroup().id, namePrefix)
var identityName = '${namePrefix}-id-${suffix}'
var storageName = toLower(take('${namePrefix}st${suffix}', 24))
var planName = '${namePrefix}-plan-${suffix}'
var siteName = '${namePrefix}-app-${suffix}'
var botName = '${namePrefix}-bot-${suffix}'
var tablePrefix = 'cordon'
// Storage Table Data Contributor (built-in role)
var tableDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: The name is computed (toLower and take 24 of a prefix and uniqueString: lower-case letters and digits), which the check cannot evaluate.
  name: storageName
  // checkov:skip=CKV_AZURE_59: Public network access stays on so App Service reaches the account without a VNet; shared keys are off, so only an Entra ID token with the table data role gets in. For a VNet-integrated plan add a private endpoint and disable it.
  location: location
  sku: {
    name: 'Standard_GZRS'
  }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    isLocalUserEnabled: false
    isSftpEnabled: false
    publicNetworkAccess: 'Enabled'
    // checkov:skip=CKV_AZURE_35: Default action Allow for the same reason as CKV_AZURE_59 (App Service outbound addresses are shared by other customers, so an IP rule would protect nothing); every request needs an Entra ID token.
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        table: { enabled: true, keyType: 'Account' }
        blob: { enabled: true, keyType: 'Account' }
        file: { enabled: true, keyType: 'Account' }
        queue: { enabled: true, keyType: 'Account' }
      }
    }
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Cordon creates its tables ({prefix}docs, {prefix}audit) at start; creating them here too lets the role be
// narrowed to the tables later.
resource docsTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: '${tablePrefix}docs'
}

resource auditTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: '${tablePrefix}audit'
}

resource tableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, tableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: tableDataContributor
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = if (!empty(acrName)) {
  name: empty(acrName) ? 'none' : acrName
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(acrName)) {
  name: guid(resourceGroup().id, acrName, identity.id, 'AcrPull')
  scope: registry
  properties: {
    // AcrPull (built-in role)
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '7f951dda-4ed3-4680-a7ca-43fe172d538d')
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = if (enableMonitoring) {
  name: '${namePrefix}-logs-${suffix}'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 90
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = if (enableMonitoring) {
  name: '${namePrefix}-ai-${suffix}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: planName
  location: location
  kind: 'linux'
  sku: {
    name: planSku
    capacity: instanceCount
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

var cordonToml = join([
  'allowed_tenants = ${allowedTenantsToml}'
  '[roles]'
  'technicians = ${techniciansToml}'
  'approvers = ${approversToml}'
  '[storage]'
  'backend = "azure"'
  'account_url = "${storage.properties.primaryEndpoints.table}"'
  'prefix = "${tablePrefix}"'
], '\n')

resource site 'Microsoft.Web/sites@2023-12-01' = {
  // checkov:skip=CKV_AZURE_222: Public network access is required: Teams (the Bot Connector) calls the messaging endpoint from the internet; Cordon checks the Bot Framework JWT on every request.
  name: siteName
  // checkov:skip=CKV_AZURE_17: No client certificates: the Bot Connector authenticates with a signed JWT (issuer, audience, keys, tenant checked by Cordon) and presents no client certificate.
  location: location
  kind: 'app,linux,container'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      linuxFxVersion: 'DOCKER|${containerImage}'
      acrUseManagedIdentityCreds: !empty(acrName)
      acrUserManagedIdentityID: empty(acrName) ? null : identity.properties.clientId
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      alwaysOn: true
      healthCheckPath: '/readyz'
      numberOfWorkers: instanceCount
      remoteDebuggingEnabled: false
      detailedErrorLoggingEnabled: true
      httpLoggingEnabled: true
      requestTracingEnabled: true
      appSettings: concat([
        { name: 'MicrosoftAppType', value: 'UserAssignedMSI' }
        { name: 'MicrosoftAppId', value: identity.properties.clientId }
        { name: 'MicrosoftAppTenantId', value: tenant().tenantId }
        { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
        { name: 'PORT', value: '8000' }
        { name: 'WEBSITES_PORT', value: '8000' }
        { name: 'WEBSITES_ENABLE_APP_SERVICE_STORAGE', value: 'false' }
        { name: 'CORDON_TOML', value: cordonToml }
      ], enableMonitoring ? [
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
      ] : [])
    }
  }
}

resource ftpOff 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

resource scmBasicOff 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: botName
  location: 'global'
  kind: 'azurebot'
  sku: {
    name: botSku
  }
  properties: {
    displayName: 'Cordon'
    endpoint: 'https://${site.properties.defaultHostName}/api/messages'
    msaAppId: identity.properties.clientId
    msaAppType: 'UserAssignedMSI'
    msaAppTenantId: tenant().tenantId
    msaAppMSIResourceId: identity.id
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
      enableCalling: false
    }
  }
}

@description('The messaging endpoint the Azure Bot calls.')
output botEndpoint string = bot.properties.endpoint

@description('MicrosoftAppId: the bot\'s app id (the managed identity\'s client id), for `app.py manifest --app-id`.')
output appId string = identity.properties.clientId

@description('The managed identity\'s object id: `app.py permissions --grant` assigns Graph app roles to it.')
output identityPrincipalId string = identity.properties.principalId

output tenantId string = tenant().tenantId
output webAppHostName string = site.properties.defaultHostName
output tableEndpoint string = storage.properties.primaryEndpoints.table
