#!/usr/bin/env node
// Grafana dashboards as code: builds the four slm-gateway dashboards with
// @grafana/grafana-foundation-sdk and writes them to monitoring/grafana/dashboards/*.json.
//
//   node monitoring/grafana/generate.js            # regenerate the committed JSON
//   node monitoring/grafana/generate.js --check    # exit 1 if the committed JSON is stale
//
// The SDK comes from tools/npm (npm ci there; tools/install-deps.sh does it). Every panel's
// queries are run against a real Prometheus by tests/monitoring/test_dashboard_queries.py.
// A panel whose metric has not landed yet carries `pending` (shown in its description as
// "[pending: ...]"); that test skips it, and fails once it returns data so the mark is removed.
'use strict';

const fs = require('fs');
const path = require('path');

const npmModules = path.resolve(__dirname, '../../tools/npm/node_modules');
const sdk = (name) => require(path.join(npmModules, '@grafana/grafana-foundation-sdk', 'dist', name));
const dashboard = sdk('dashboard');
const prometheus = sdk('prometheus');
const timeseries = sdk('timeseries');
const stat = sdk('stat');
const common = sdk('common');

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const RATE = '$__rate_interval';

// p-quantile of a histogram family, grouped by `by` (le is added).
function quantile(q, metric, by, selector = '') {
  const group = ['le'].concat(by).join(', ');
  return `histogram_quantile(${q}, sum by (${group}) (rate(${metric}_bucket${selector}[${RATE}])))`;
}

// Panel specs: {title, description, unit, kind ('timeseries' | 'stat'), targets: [[expr, legend]],
// pending: why the panel has no data yet (metric not landed)}.
const DASHBOARDS = [
  {
    uid: 'slmgw-overview',
    title: 'slm-gateway / Overview',
    description: 'Traffic, errors and latency by route, as the router sees them.',
    rows: [
      ['Traffic', [
        { title: 'Requests per second by route', unit: 'reqps',
          targets: [['sum by (route) (rate(slmgw_router_requests_total[' + RATE + ']))', '{{route}}']] },
        { title: 'Requests per second by outcome', unit: 'reqps',
          targets: [['sum by (outcome) (rate(slmgw_router_requests_total[' + RATE + ']))', '{{outcome}}']] },
        { title: 'In flight (router)', unit: 'short', kind: 'stat',
          targets: [['sum(slmgw_router_in_flight)', 'in flight']] },
        { title: 'Requests per second by model', unit: 'reqps',
          targets: [['sum by (model) (rate(slmgw_router_requests_total[' + RATE + ']))', '{{model}}']] },
      ]],
      ['Errors', [
        { title: 'Error ratio by route', unit: 'percentunit',
          description: 'Share of requests whose outcome is not ok.',
          targets: [['sum by (route) (rate(slmgw_router_requests_total{outcome!="ok"}[' + RATE + ']))'
                     + ' / sum by (route) (rate(slmgw_router_requests_total[' + RATE + ']))', '{{route}}']] },
        { title: 'Errors per second by route and outcome', unit: 'reqps',
          targets: [['sum by (route, outcome) (rate(slmgw_router_requests_total{outcome!="ok"}[' + RATE + ']))',
                     '{{route}} {{outcome}}']] },
      ]],
      ['Latency', [
        { title: 'p99 latency by route', unit: 's',
          targets: [[quantile(0.99, 'slmgw_router_request_duration_seconds', ['route']), '{{route}}']] },
        { title: 'p50 latency by route', unit: 's',
          targets: [[quantile(0.5, 'slmgw_router_request_duration_seconds', ['route']), '{{route}}']] },
        { title: 'Router overhead p99 (excluding the worker call)', unit: 's',
          targets: [[quantile(0.99, 'slmgw_router_overhead_seconds', ['route']), '{{route}}']] },
        { title: 'Worker compute p99 by model', unit: 's',
          targets: [[quantile(0.99, 'slmgw_worker_compute_duration_seconds', ['model']), '{{model}}']] },
      ]],
    ],
  },
  {
    uid: 'slmgw-routing',
    title: 'slm-gateway / Routing',
    description: 'How the router decides: signals, confidence, fallbacks, cascades and shed load.',
    rows: [
      ['Decisions', [
        { title: 'Decisions per second by route and signal', unit: 'reqps',
          targets: [['sum by (route, signal) (rate(slmgw_router_decisions_total[' + RATE + ']))',
                     '{{route}} by {{signal}}']] },
        { title: 'Classification time p99 by signal', unit: 's',
          targets: [[quantile(0.99, 'slmgw_router_classification_duration_seconds', ['signal']), '{{signal}}']] },
        { title: 'Learned-signal confidence p50 by signal', unit: 'percentunit',
          targets: [[quantile(0.5, 'slmgw_router_confidence_ratio', ['signal']), '{{signal}}']] },
      ]],
      ['Fallbacks and cascades', [
        { title: 'Fallbacks per second by reason', unit: 'reqps',
          targets: [['sum by (reason) (rate(slmgw_router_fallbacks_total[' + RATE + ']))', '{{reason}}']] },
        { title: 'Fallbacks per second by source and target route', unit: 'reqps',
          targets: [['sum by (source, target) (rate(slmgw_router_fallbacks_total[' + RATE + ']))',
                     '{{source}} -> {{target}}']] },
        { title: 'Cascade escalations per second by route', unit: 'reqps',
          targets: [['sum by (route) (rate(slmgw_router_cascade_escalations_total[' + RATE + ']))', '{{route}}']] },
        { title: 'Shed load per second by route and reason', unit: 'reqps',
          targets: [['sum by (route, reason) (rate(slmgw_router_load_shed_total[' + RATE + ']))',
                     '{{route}} {{reason}}']] },
        { title: 'Configuration reloads by outcome', unit: 'short',
          targets: [['sum by (outcome) (increase(slmgw_router_config_reloads_total[1h]))', '{{outcome}}']] },
      ]],
    ],
  },
  {
    uid: 'slmgw-workers',
    title: 'slm-gateway / Workers',
    description: 'Per model and pod (instance): queues, batches, token latencies, throughput, KV cache.',
    rows: [
      ['Queue', [
        { title: 'Queue depth by model and pod', unit: 'short',
          targets: [['max by (model, instance) (slmgw_worker_queue_depth)', '{{model}} @ {{instance}}']] },
        { title: 'Computing now by model and pod', unit: 'short',
          targets: [['max by (model, instance) (slmgw_worker_in_flight)', '{{model}} @ {{instance}}']] },
        { title: 'Queue wait p99 by model', unit: 's',
          targets: [[quantile(0.99, 'slmgw_worker_queue_duration_seconds', ['model']), '{{model}}']] },
        { title: 'Worker outcomes per second by model', unit: 'reqps',
          targets: [['sum by (model, outcome) (rate(slmgw_worker_requests_total[' + RATE + ']))',
                     '{{model}} {{outcome}}']] },
      ]],
      ['Compute', [
        { title: 'Compute time p99 by model and pod', unit: 's',
          targets: [[quantile(0.99, 'slmgw_worker_compute_duration_seconds', ['model', 'instance']),
                     '{{model}} @ {{instance}}']] },
        { title: 'Tokens per second by model and direction', unit: 'short',
          targets: [['sum by (model, direction) (rate(slmgw_worker_tokens_total[' + RATE + ']))',
                     '{{model}} {{direction}}']] },
        { title: 'Sequences per decoder step p50 by model', unit: 'short',
          description: 'Continuous batching: how many sequences each model step computed together.',
          targets: [[quantile(0.5, 'slmgw_worker_batch_sequences', ['model']), '{{model}}']] },
        { title: 'Served models', unit: 'short', kind: 'stat',
          targets: [['count by (model, dtype) (slmgw_worker_model_info)', '{{model}} {{dtype}}']] },
      ]],
      ['Generation', [
        { title: 'Time to first token p99 by model', unit: 's',
          targets: [[quantile(0.99, 'slmgw_worker_time_to_first_token_seconds', ['model']), '{{model}}']] },
        { title: 'Time per output token p99 by model', unit: 's',
          targets: [[quantile(0.99, 'slmgw_worker_time_per_output_token_seconds', ['model']), '{{model}}']] },
        { title: 'KV-cache use by model and pod', unit: 'percentunit',
          description: 'KV-cache bytes reserved by running sequences over the budget (kv_cache_mb).',
          targets: [['max by (model, instance) (slmgw_worker_kv_cache_used_bytes'
                     + ' / slmgw_worker_kv_cache_budget_bytes)', '{{model}} @ {{instance}}']] },
        { title: 'Sequences being generated by model and pod', unit: 'short',
          targets: [['max by (model, instance) (slmgw_worker_active_sequences)', '{{model}} @ {{instance}}']] },
      ]],
    ],
  },
  {
    uid: 'slmgw-endpoints',
    title: 'slm-gateway / Endpoints',
    description: 'Worker endpoints as the router sees them: state, cooldowns, retries, hedges, errors; OpenAI-compatible upstreams.',
    rows: [
      ['Health', [
        { title: 'Upstream errors per second by pool and code', unit: 'reqps',
          targets: [['sum by (pool, code) (rate(slmgw_router_upstream_errors_total[' + RATE + ']))',
                     '{{pool}} {{code}}']] },
        { title: 'Endpoint state by pool', unit: 'short',
          targets: [['sum by (pool, state) (slmgw_router_endpoints)', '{{pool}} {{state}}']] },
        { title: 'Cooldowns per second by pool', unit: 'short',
          targets: [['sum by (pool) (rate(slmgw_router_endpoint_cooldowns_total[' + RATE + ']))', '{{pool}}']] },
      ]],
      ['Retries and hedges', [
        { title: 'Retries per second by pool', unit: 'reqps',
          targets: [['sum by (pool) (rate(slmgw_router_retries_total[' + RATE + ']))', '{{pool}}']] },
        { title: 'Hedged requests per second by pool', unit: 'reqps',
          targets: [['sum by (pool) (rate(slmgw_router_hedges_total[' + RATE + ']))', '{{pool}}']] },
        { title: 'Retries and hedges refused by the retry budget, per second by pool', unit: 'reqps',
          targets: [['sum by (pool) (rate(slmgw_router_retry_budget_exhausted_total[' + RATE + ']))', '{{pool}}']] },
      ]],
      ['OpenAI-compatible upstreams', [
        { title: 'Upstream requests per second by upstream and outcome', unit: 'reqps',
          targets: [['sum by (upstream, outcome) (rate(slmgw_router_upstream_requests_total[' + RATE + ']))',
                     '{{upstream}} {{outcome}}']] },
        { title: 'Upstream latency p99 by upstream', unit: 's',
          description: 'Streams: until the last chunk.',
          targets: [[quantile(0.99, 'slmgw_router_upstream_latency_seconds', ['upstream']), '{{upstream}}']] },
      ]],
    ],
  },
];

function buildPanel(spec, gridPos) {
  const builder = spec.kind === 'stat' ? new stat.PanelBuilder() : new timeseries.PanelBuilder();
  let description = spec.description || '';
  if (spec.pending) description = `[pending: ${spec.pending}] ${description}`.trim();
  builder.title(spec.title).unit(spec.unit).datasource(DATASOURCE).gridPos(gridPos);
  if (description) builder.description(description);
  if (spec.kind !== 'stat') builder.legend(new common.VizLegendOptionsBuilder().showLegend(true)
      .displayMode(common.LegendDisplayMode.Table).placement(common.LegendPlacement.Bottom));
  spec.targets.forEach(([expr, legend], i) => {
    builder.withTarget(new prometheus.DataqueryBuilder().refId(String.fromCharCode(65 + i))
        .datasource(DATASOURCE).expr(expr).legendFormat(legend));
  });
  return builder;
}

function buildDashboard(spec) {
  const builder = new dashboard.DashboardBuilder(spec.title)
      .uid(spec.uid).description(spec.description).tags(['slm-gateway', 'generated'])
      .refresh('30s').time({ from: 'now-1h', to: 'now' }).timezone('browser').readonly()
      .withVariable(new dashboard.DatasourceVariableBuilder('datasource').label('Data source')
          .type('prometheus'));
  let y = 0;
  for (const [rowTitle, panels] of spec.rows) {
    builder.withRow(new dashboard.RowBuilder(rowTitle).gridPos({ x: 0, y: y, w: 24, h: 1 }));
    y += 1;
    panels.forEach((panel, i) => {
      builder.withPanel(buildPanel(panel, { x: (i % 2) * 12, y: y + Math.floor(i / 2) * 8, w: 12, h: 8 }));
    });
    y += Math.ceil(panels.length / 2) * 8;
  }
  return builder.build();
}

function main() {
  const check = process.argv.includes('--check');
  const outDir = path.join(__dirname, 'dashboards');
  let stale = [];
  for (const spec of DASHBOARDS) {
    const file = path.join(outDir, spec.uid.replace(/^slmgw-/, '') + '.json');
    const text = JSON.stringify(buildDashboard(spec), null, 2) + '\n';
    if (check) {
      const committed = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
      if (committed !== text) stale.push(path.relative(process.cwd(), file));
    } else {
      fs.mkdirSync(outDir, { recursive: true });
      fs.writeFileSync(file, text);
      console.log(`wrote ${file}`);
    }
  }
  if (stale.length) {
    console.error(`stale dashboards (run node monitoring/grafana/generate.js): ${stale.join(', ')}`);
    process.exit(1);
  }
}

main();
