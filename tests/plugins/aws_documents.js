// DynamoDB's DocumentClient (aws-sdk v2): native values in, native values out.
async function onTrack(event, settings) {
  const doc = new AWS.DynamoDB.DocumentClient({ region: "us-east-1", endpoint: settings.endpoint,
    accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey });
  const item = { id: "u1", n: 1.5, ok: true, none: null, tags: doc.createSet(["a", "b"]), nested: { list: [1, "x", { deep: false }] },
                 bin: Buffer.from("bytes") };
  await doc.put({ TableName: settings.table, Item: item }).promise();
  const got = (await doc.get({ TableName: settings.table, Key: { id: "u1" } }).promise()).Item;
  const updated = await new Promise((resolve, reject) => doc.update({ TableName: settings.table, Key: { id: "u1" },
    UpdateExpression: "SET n = n + :one", ExpressionAttributeValues: { ":one": 1 }, ReturnValues: "UPDATED_NEW" },
    (err, data) => (err ? reject(err) : resolve(data))));
  await doc.batchWrite({ RequestItems: { [settings.table]: [{ PutRequest: { Item: { id: "u2", v: 2 } } }] } }).promise();
  const batch = await doc.batchGet({ RequestItems: { [settings.table]: { Keys: [{ id: "u2" }] } } }).promise();
  const query = await doc.query({ TableName: settings.table, KeyConditionExpression: "id = :id", ExpressionAttributeValues: { ":id": "u1" } }).promise();
  return {
    got, setType: got.tags.type, setValues: got.tags.values, binIsBuffer: Buffer.isBuffer(got.bin), bin: got.bin.toString(),
    updated: updated.Attributes, batch: batch.Responses[settings.table], count: query.Count, queried: query.Items.map((i) => i.id),
  };
}
