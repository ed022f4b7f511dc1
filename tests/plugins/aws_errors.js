// Each case calls AWS the wrong way and reports the error as aws-sdk v2 shapes it.
async function onTrack(event, settings) {
  const config = { region: "us-east-1", endpoint: settings.endpoint, accessKeyId: settings.accessKeyId,
                   secretAccessKey: settings.secretAccessKey, s3ForcePathStyle: true };
  const shape = (e) => ({ name: e.name, code: e.code, statusCode: e.statusCode, retryable: e.retryable,
                          hasMessage: typeof e.message === "string" && e.message.length > 0, isError: e instanceof Error });
  const cases = {
    s3: () => new AWS.S3(config).putObject({ Bucket: settings.bucket, Key: "k", Body: "x" }).promise(),
    sqs: () => new AWS.SQS(config).listQueues({}).promise(),
    dynamodb: () => new AWS.DynamoDB(config).listTables({}).promise(),
    kinesis: () => new AWS.Kinesis(config).listStreams({}).promise(),
    missingParam: () => new AWS.S3(config).putObject({ Key: "k" }).promise(),
    unknownParam: () => new AWS.SQS(config).sendMessage({ QueueUrl: "u", MessageBody: "b", Nope: 1 }).promise(),
    noCredentials: () => new AWS.S3({ region: "us-east-1", endpoint: settings.endpoint }).listBuckets().promise(),
    noRegion: () => new AWS.S3({ accessKeyId: "a", secretAccessKey: "b", endpoint: settings.endpoint }).listBuckets().promise(),
    refused: () => new AWS.SQS({ ...config, endpoint: "http://127.0.0.1:9" }).listQueues({}).promise(),
  };
  const out = {};
  for (const [name, run] of Object.entries(cases)) {
    try { await run(); out[name] = "no error"; } catch (e) { out[name] = shape(e); }
  }
  out.callback = await new Promise((resolve) =>
    new AWS.S3(config).listBuckets((err, data) => resolve(err ? shape(err) : "no error")));
  return out;
}
