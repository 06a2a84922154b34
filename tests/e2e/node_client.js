// A Node.js client of slmgw.v1.GatewayService (@grpc/grpc-js + @grpc/proto-loader from
// tools/npm), used by test_node_client.py: proves the API works from a second language runtime.
//
//   node node_client.js HOST:PORT "text to classify"
//
// Prints one JSON object: the Classify response, the Route decision, and the error of a request
// with an unknown task.
'use strict';
const path = require('path');
const modules = path.join(__dirname, '../../tools/npm/node_modules');
const grpc = require(path.join(modules, '@grpc/grpc-js'));
const protoLoader = require(path.join(modules, '@grpc/proto-loader'));

const [address, text] = process.argv.slice(2);
const definition = protoLoader.loadSync('slmgw/v1/gateway.proto', {
  includeDirs: [path.join(__dirname, '../../proto')],
  keepCase: true,
  longs: Number,
  defaults: true,
});
const slmgw = grpc.loadPackageDefinition(definition).slmgw.v1;
const client = new slmgw.GatewayService(address, grpc.credentials.createInsecure());

function call(method, request) {
  return new Promise((resolve) => {
    const deadline = new Date(Date.now() + 10000);
    client[method](request, { deadline }, (error, response) => {
      resolve(error ? { code: error.code, details: error.details } : { response });
    });
  });
}

(async () => {
  const classify = await call('Classify', { text, options: { task: 'sentiment' } });
  const route = await call('Route', { text, options: { task: 'sentiment' } });
  const unknown = await call('Classify', { text, options: { task: 'no-such-task' } });
  console.log(JSON.stringify({ classify, route, unknown }));
  client.close();
})();
