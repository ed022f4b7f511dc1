// SNS (query protocol), EventBridge, Firehose and Lambda's error path through the AWS built-in.
async function onTrack(event, settings) {
  AWS.config.update({ region: "us-east-1", credentials: new AWS.Credentials(settings.accessKeyId, settings.secretAccessKey) });
  const endpoint = settings.endpoint;
  const sns = new AWS.SNS({ endpoint });
  const published = await sns.publish({ TopicArn: settings.topicArn, Message: JSON.stringify(event.properties), Subject: "track",
    MessageAttributes: { kind: { DataType: "String", StringValue: "track" } } }).promise();
  const topics = await sns.listTopics({}).promise();
  const bus = await new AWS.EventBridge({ endpoint }).putEvents({ Entries: [{ Source: "segment", DetailType: "track",
    Detail: JSON.stringify(event.properties), Time: new Date("2024-01-02T03:04:05Z") }] }).promise();
  const firehose = await new AWS.Firehose({ endpoint }).putRecord({ DeliveryStreamName: settings.firehose,
    Record: { Data: JSON.stringify(event.properties) + "\n" } }).promise();
  let lambda;
  try { await new AWS.Lambda({ endpoint }).invoke({ FunctionName: "missing", Payload: "{}" }).promise(); }
  catch (e) { lambda = { code: e.code, statusCode: e.statusCode, retryable: e.retryable }; }
  return { messageId: typeof published.MessageId, topics: topics.Topics.map((t) => t.TopicArn), failed: bus.FailedEntryCount,
           entries: bus.Entries.length, recordId: typeof firehose.RecordId, lambda };
}
