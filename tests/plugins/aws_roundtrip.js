// Writes to S3, Kinesis, SQS and DynamoDB with the AWS built-in (aws-sdk v2 style), reads each
// back, and reports what it saw. settings: endpoint, accessKeyId, secretAccessKey, names.
async function onTrack(event, settings) {
  AWS.config.update({ region: "us-east-1", accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey });
  const common = { endpoint: settings.endpoint };
  const s3 = new AWS.S3({ ...common, s3ForcePathStyle: true });
  const kinesis = new AWS.Kinesis(common);
  const sqs = new AWS.SQS(common);
  const dynamo = new AWS.DynamoDB(common);
  const body = JSON.stringify(event.properties);
  const key = `events/${event.messageId}.json`;

  const put = await s3.putObject({ Bucket: settings.bucket, Key: key, Body: body, ContentType: "application/json" }).promise();
  const got = await s3.getObject({ Bucket: settings.bucket, Key: key }).promise();
  const record = await kinesis.putRecord({ StreamName: settings.stream, Data: Buffer.from(body), PartitionKey: event.messageId }).promise();
  const queueUrl = (await sqs.getQueueUrl({ QueueName: settings.queue }).promise()).QueueUrl;
  const sent = await new Promise((resolve, reject) =>
    sqs.sendMessage({ QueueUrl: queueUrl, MessageBody: body, MessageAttributes: { kind: { DataType: "String", StringValue: "track" } } },
      (err, data) => (err ? reject(err) : resolve(data))));
  await dynamo.putItem({ TableName: settings.table, Item: { id: { S: event.messageId }, n: { N: "42" }, tags: { SS: ["a", "b"] } } }).promise();
  const item = await dynamo.getItem({ TableName: settings.table, Key: { id: { S: event.messageId } } }).promise();
  let missing;
  try { await s3.getObject({ Bucket: settings.bucket, Key: "nope" }).promise(); } catch (e) {
    missing = { code: e.code, name: e.name, statusCode: e.statusCode, retryable: e.retryable };
  }
  return {
    etag: put.ETag, body: got.Body.toString(), bodyIsBuffer: Buffer.isBuffer(got.Body), contentType: got.ContentType,
    lastModifiedIsDate: got.LastModified instanceof Date,
    shard: record.ShardId, sequence: typeof record.SequenceNumber, messageId: typeof sent.MessageId,
    item: item.Item, missing,
  };
}
