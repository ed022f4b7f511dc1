// bench (c): one S3 putObject per event (aws-sdk v2 style) to the endpoint in settings.
let s3 = null;
async function onTrack(event, settings) {
  if (s3 === null) {
    s3 = new AWS.S3({ region: "us-east-1", endpoint: settings.endpoint, s3ForcePathStyle: true,
                      accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey });
  }
  const out = await s3.putObject({ Bucket: settings.bucket, Key: `events/${event.messageId}.json`,
                                   Body: JSON.stringify(event), ContentType: "application/json" }).promise();
  return out.ETag;
}
