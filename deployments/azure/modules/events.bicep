// Event Grid: the lake's system topic, and the subscription that delivers BlobCreated in the
// landing container to the relay (an Azure Function that emits the Prefect event
// azure.storage.blob.created; see deployments/README.md).

param location string
param tags object
@description('Name of the data lake storage account.')
param lakeName string
@description('Resource id of the relay function (.../sites/<app>/functions/<name>); empty: topic only, no subscription yet.')
param relayFunctionId string = ''

resource lake 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: lakeName
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: '${lakeName}-events'
  location: location
  tags: tags
  // Its own identity writes failed deliveries to the dead-letter container (shared keys are
  // off, so a key-based dead-letter destination cannot work).
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: lake.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource deadLetter 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${lakeName}/default/dead-letter'
}

// Storage Blob Data Contributor (ba92f5b4-2d11-453d-a403-e96b0029c9fe) for the topic's own
// identity, on the dead-letter container only: Event Grid writes undeliverable events there.
resource topicWritesDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetter.id, topic.id, 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
  scope: deadLetter
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
    principalId: topic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource landingToRelay 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (!empty(relayFunctionId)) {
  parent: topic
  dependsOn: [
    topicWritesDeadLetters
  ]
  name: 'landing-to-prefect'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/landing/blobs/'
    }
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: relayFunctionId
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: lake.id
          blobContainerName: 'dead-letter'
        }
      }
    }
  }
}

output topicName string = topic.name
output topicPrincipalId string = topic.identity.principalId
output subscribed bool = !empty(relayFunctionId)
