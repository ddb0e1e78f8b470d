// The independent check of spate's KPL aggregated records: AWS's own
// aws-kinesis-agg (pinned in package.json) reading from and writing to
// kinesalite over its JSON API.
//
//   node kpl.js read ENDPOINT STREAM
//     Deaggregates every record of every shard with deaggregateSync (MD5
//     checked) and prints one JSON line per user record:
//     {"shardId","sequenceNumber","subSequenceNumber","partitionKey",
//      "explicitHashKey","aggregated","data"(base64)}
//   node kpl.js write ENDPOINT STREAM < lines
//     Reads JSON lines {"partitionKey","data"(base64)}, aggregates them
//     with RecordAggregator, puts the aggregated records into STREAM and
//     prints {"records":N,"userRecords":M}.
'use strict';
const agg = require('aws-kinesis-agg');
const { magicNumber } = require('aws-kinesis-agg/lib/common');
const readline = require('readline');

async function call(endpoint, op, body) {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.1',
      'X-Amz-Target': `Kinesis_20131202.${op}`,
      // kinesalite wants a well-formed SigV4 header; it checks no signature.
      'X-Amz-Date': '20260101T000000Z',
      Authorization: 'AWS4-HMAC-SHA256 Credential=AKIDSPATETEST/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00',
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${op}: HTTP ${res.status}: ${text}`);
  return JSON.parse(text);
}

async function read(endpoint, stream) {
  const shards = [];
  let page = await call(endpoint, 'ListShards', { StreamName: stream });
  shards.push(...page.Shards);
  while (page.NextToken) {
    page = await call(endpoint, 'ListShards', { NextToken: page.NextToken });
    shards.push(...page.Shards);
  }
  for (const sh of shards) {
    let it = (await call(endpoint, 'GetShardIterator', { StreamName: stream, ShardId: sh.ShardId, ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator;
    while (it) {
      const out = await call(endpoint, 'GetRecords', { ShardIterator: it, Limit: 10000 });
      for (const r of out.Records) {
        const aggregated = Buffer.from(r.Data, 'base64').subarray(0, 4).toString('hex') === magicNumber;
        agg.deaggregateSync({ partitionKey: r.PartitionKey, sequenceNumber: r.SequenceNumber, data: r.Data }, true, (err, users) => {
          if (err) throw new Error(`record ${r.SequenceNumber} on ${sh.ShardId}: ${err.message}`);
          for (const u of users) {
            process.stdout.write(JSON.stringify({
              shardId: sh.ShardId, sequenceNumber: u.sequenceNumber, subSequenceNumber: u.subSequenceNumber,
              partitionKey: u.partitionKey, explicitHashKey: u.explicitPartitionKey, aggregated, data: u.data,
            }) + '\n');
          }
        });
      }
      if (out.Records.length === 0 && !out.MillisBehindLatest) break;
      it = out.NextShardIterator;
    }
  }
}

async function write(endpoint, stream) {
  const users = [];
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const u = JSON.parse(line);
    users.push({ partitionKey: u.partitionKey, data: Buffer.from(u.data, 'base64') });
  }
  const encoded = [];
  const aggregator = new agg.RecordAggregator();
  aggregator.aggregateRecords(users, true, (err, rec) => {
    if (err) throw err;
    encoded.push(rec);
  });
  for (let i = 0; i < encoded.length; i += 5) {
    const batch = encoded.slice(i, i + 5).map((r) => ({ PartitionKey: r.partitionKey, Data: r.data.toString('base64') }));
    const out = await call(endpoint, 'PutRecords', { StreamName: stream, Records: batch });
    if (out.FailedRecordCount) throw new Error(`PutRecords: ${out.FailedRecordCount} records failed`);
  }
  process.stdout.write(JSON.stringify({ records: encoded.length, userRecords: users.length }) + '\n');
}

const [mode, endpoint, stream] = process.argv.slice(2);
const run = mode === 'read' ? read : mode === 'write' ? write : null;
if (!run || !endpoint || !stream) {
  console.error('usage: node kpl.js read|write ENDPOINT STREAM');
  process.exit(2);
}
run(endpoint, stream).catch((err) => { console.error(err.message || err); process.exit(1); });
