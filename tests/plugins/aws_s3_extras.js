// S3's managed upload and presigned URLs (aws-sdk v2), then fetch through the presigned URL.
async function onTrack(event, settings) {
  const s3 = new AWS.S3({ region: "us-east-1", endpoint: settings.endpoint, s3ForcePathStyle: true,
                          accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey });
  const up = await s3.upload({ Bucket: settings.bucket, Key: "up/x.txt", Body: "uploaded ✓", ContentType: "text/plain" }).promise();
  const url = s3.getSignedUrl("getObject", { Bucket: settings.bucket, Key: "up/x.txt", Expires: 60 });
  const viaUrl = await (await fetch(url)).text();
  const putUrl = await s3.getSignedUrlPromise("putObject", { Bucket: settings.bucket, Key: "up/y.txt" });
  const put = await fetch(putUrl, { method: "PUT", body: "via presigned PUT" });
  let bad;
  try { s3.getSignedUrl("getObject", { Bucket: settings.bucket, Key: "k", Expires: 0 }); } catch (e) { bad = e.code; }
  const q = new URL(url).searchParams;
  const signedWith = [q.get("X-Amz-Algorithm"), q.get("X-Amz-Expires"), q.get("X-Amz-Credential").startsWith(settings.accessKeyId + "/")];
  return { signedWith, location: up.Location, key: up.Key, etag: typeof up.ETag, viaUrl, putStatus: put.status, bad };
}
