// Starts the AWS API emulators the integration tests use, on 127.0.0.1 and
// ephemeral ports, and prints one JSON line with their endpoints once both
// listen. It exits when its stdin closes, so a test that dies takes it along.
'use strict';
const kinesalite = require('kinesalite');
const { createSqsServer } = require('local-aws-sqs');

async function main() {
  // createStreamMs 0: streams are ACTIVE at once; shardLimit above the
  // default 10 so tests can create several multi-shard streams.
  const kin = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 1000 });
  await new Promise((resolve, reject) => {
    kin.once('error', reject);
    kin.listen(0, '127.0.0.1', resolve);
  });
  const sqs = await createSqsServer({ port: 0, hostname: '127.0.0.1', emulateQueueCreationLifecycle: false });
  const sqsPort = sqs.address().port;
  process.stdout.write(JSON.stringify({
    kinesis: `http://127.0.0.1:${kin.address().port}`,
    sqs: `http://127.0.0.1:${sqsPort}`,
  }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
}

main().catch((err) => { console.error(err); process.exit(1); });
