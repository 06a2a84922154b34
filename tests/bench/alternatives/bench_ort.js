#!/usr/bin/env node
// ONNX Runtime (CPU execution provider, via onnxruntime-node) on the encoder benchmark's model,
// exported by make_bench_model.py from the same PyTorch module, on the ids encoder_bench uses.
//
//   npm i --ignore-scripts onnxruntime-node   (once, in this folder)
//   node bench_ort.js MODEL.onnx [threads=1,2] [seqs=16,64,256] [vocab=8192]
//
// Prints one JSON object a line: {"engine":"onnxruntime","dtype":"f32","threads","seq",
// "tokens_per_s"}.
'use strict';
const ort = require('onnxruntime-node');

function benchIds(seq, vocab) {
  const ids = new BigInt64Array(seq);
  for (let t = 0; t < seq; ++t) ids[t] = BigInt(5 + ((t * 7919) % (vocab - 5)));
  ids[0] = 2n;
  ids[seq - 1] = 3n;
  return ids;
}

async function main() {
  const [modelPath, threadsArg = '1,2', seqsArg = '16,64,256', vocabArg = '8192'] =
      process.argv.slice(2);
  if (!modelPath) throw new Error('usage: bench_ort.js MODEL.onnx [threads] [seqs] [vocab]');
  const minSeconds = 1.0;
  for (const threads of threadsArg.split(',').map(Number)) {
    const session = await ort.InferenceSession.create(modelPath, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    for (const seq of seqsArg.split(',').map(Number)) {
      const feeds = {ids: new ort.Tensor('int64', benchIds(seq, Number(vocabArg)), [1, seq])};
      await session.run(feeds);  // warm-up
      let iterations = 0;
      const start = process.hrtime.bigint();
      let elapsed = 0;
      do {
        await session.run(feeds);
        ++iterations;
        elapsed = Number(process.hrtime.bigint() - start) / 1e9;
      } while (elapsed < minSeconds || iterations < 3);
      console.log(JSON.stringify({engine: 'onnxruntime', dtype: 'f32', threads, seq,
                                  tokens_per_s: seq * iterations / elapsed}));
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
