// An S3-compatible server for the tests (npm @20minutes/s3rver: it checks Signature V4, so a
// request signed wrongly fails as it would on AWS or MinIO). scripts/install-deps installs it.
//   node --openssl-legacy-provider tests/s3_server.js DIR PORT BUCKET...   (NODE_PATH: where it is
//   installed; the flag because s3rver makes listing continuation tokens with DES)
// Credentials: access key S3RVER, secret S3RVER.
const S3rver = require('@20minutes/s3rver');

const [dir, port, ...buckets] = process.argv.slice(2);
if (!dir || !port) {
  console.error('usage: node s3_server.js DIR PORT BUCKET...');
  process.exit(2);
}
new S3rver({
  directory: dir,
  port: Number(port),
  address: '127.0.0.1',
  silent: !process.env.EARMARK_S3_SERVER_VERBOSE,
  configureBuckets: buckets.map((name) => ({ name })),
})
  .run()
  .then(({ address, port: bound }) => console.log(`s3 server listening on ${address}:${bound}`))
  .catch((e) => {
    console.error(`s3 server failed to start: ${e.message}`);
    process.exit(1);
  });
process.on('SIGTERM', () => process.exit(0));
