#!/usr/bin/env node
// A device driven by a test: the unmodified AWS IoT Device SDK v2 for JavaScript (its MQTT 3.1.1
// and MQTT 5 clients), commanded one JSON line at a time on stdin, answering one JSON line per
// command on stdout. The test decides and asserts; this script only calls the SDK and reports what
// the SDK said, so that nothing here can turn a refusal into a pass.
//
// Commands ({"id": n, "op": ...}; every answer carries the same id and "ok"):
//   connect     {version: 3|5, host, port, ca, cert, key, client_id, timeout_ms?}
//               -> {session_present} | {ok: false, error, code?, reason_code?}
//   subscribe   {topic, qos} -> 3: {qos} (128: refused)  5: {reason_codes: [..]}
//   publish     {topic, payload, qos} -> 3: {packet_id}  5: {reason_code} (PUBACK's)
//   unsubscribe {topic}
//   identity    {call: create_keys | create_from_csr | register_thing, csr?, template?, token?,
//               parameters?} -> {response} (the SDK's iotidentity request-response client,
//               IotIdentityClientv2) | {ok: false, error, modeled?: the rejection document}
//   shadow      {call: get | update | delete | open_delta, thing, shadow_name? (absent: the classic
//               shadow), state?, version?} -> {response} (the SDK's IotShadowClientv2) |
//               {ok: false, error, modeled?: the rejection document}; open_delta answers once the
//               SDK reports its delta stream subscribed, and each delta then arrives as the event
//               {"event": "shadow_delta", message} (the SDK's ShadowDeltaUpdatedEvent)
//   jobs        {call: watch_next | get_pending | start_next | describe | update, thing,
//               job_id?, status?, status_details?, expected_version?, step_timeout?}
//               -> {response} (the SDK's iotjobs request-response client, IotJobsClientv2) |
//               {ok: false, error, modeled?}; watch_next opens its NextJobExecutionChanged stream
//               and answers once subscribed, then emits {"event": "next_job", message} per event
//   disconnect  {}
//   exit        {}  (also on end of stdin)
// Events, unasked: {"event": "message", topic, payload}, {"event": "disconnected", ...}.
// Errors name the SDK's error (CrtError name / code) so a test can assert on them.
'use strict';

const readline = require('readline');
const { mqtt, mqtt5, iot, iotidentity, iotshadow, iotjobs } = require('aws-iot-device-sdk-v2');

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function describe_error(e) {
  if (e === undefined || e === null) return { error: 'unknown' };
  const out = { error: String(e.message || e) };
  // CrtError carries the native error's name (e.g. AWS_ERROR_MQTT_...) and number.
  if (e.error_name !== undefined) out.code = e.error_name;
  if (e.error_code !== undefined) out.error_code = e.error_code;
  // A service client's rejection (ServiceError): the service's own document.
  if (e.modeledError !== undefined) out.modeled = e.modeledError;
  // The 3.1.1 client rejects with a plain string ("Failed to connect: libaws-c-mqtt:
  // AWS_ERROR_..., ..."): the CRT error's name is in it.
  if (out.code === undefined) {
    const name = out.error.match(/AWS_ERROR_[A-Z0-9_]+/);
    if (name) out.code = name[0];
  }
  return out;
}

// Bounded: the SDK's own timeouts are set below too, but a test must never hang on a peer.
function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const kOperationMs = 10000;
// The request-response clients' limits (as AWS's samples set them).
const kRrOptions = { maxRequestResponseSubscriptions: 6, maxStreamingSubscriptions: 2,
                     operationTimeoutInSeconds: kOperationMs / 1000 };

// Fleet provisioning by claim through the SDK's own identity client.
async function identity(cmd) {
  const client = peer.identity();
  let response;
  if (cmd.call === 'create_keys') {
    response = await within(kOperationMs, client.createKeysAndCertificate({}), 'createKeysAndCertificate');
  } else if (cmd.call === 'create_from_csr') {
    response = await within(kOperationMs,
      client.createCertificateFromCsr({ certificateSigningRequest: cmd.csr }), 'createCertificateFromCsr');
  } else if (cmd.call === 'register_thing') {
    response = await within(kOperationMs, client.registerThing({
      templateName: cmd.template, certificateOwnershipToken: cmd.token, parameters: cmd.parameters,
    }), 'registerThing');
  } else {
    throw new Error(`unknown identity call '${cmd.call}'`);
  }
  return { response };
}

// Device Shadow through the SDK's own shadow client: classic or named, as the command says.
async function shadow(cmd) {
  const client = peer.shadow();
  const named = cmd.shadow_name !== undefined;
  const target = named ? { thingName: cmd.thing, shadowName: cmd.shadow_name } : { thingName: cmd.thing };
  let response;
  if (cmd.call === 'get') {
    response = await within(kOperationMs,
      named ? client.getNamedShadow(target) : client.getShadow(target), 'getShadow');
  } else if (cmd.call === 'update') {
    const request = { ...target, state: cmd.state };
    if (cmd.version !== undefined) request.version = cmd.version;
    response = await within(kOperationMs,
      named ? client.updateNamedShadow(request) : client.updateShadow(request), 'updateShadow');
  } else if (cmd.call === 'delete') {
    response = await within(kOperationMs,
      named ? client.deleteNamedShadow(target) : client.deleteShadow(target), 'deleteShadow');
  } else if (cmd.call === 'open_delta') {
    const stream = named ? client.createNamedShadowDeltaUpdatedStream(target)
                         : client.createShadowDeltaUpdatedStream(target);
    const established = new Promise((resolve, reject) => {
      stream.on('subscriptionStatus', (e) => {
        if (e.type === 0) resolve();  // SubscriptionEstablished
        else reject(new Error(`delta stream subscription status ${e.type}`));
      });
    });
    stream.on('incomingPublish', (e) => emit({ event: 'shadow_delta', message: e.message }));
    stream.on('incomingPublishError', (e) => emit({ event: 'shadow_delta_error', ...describe_error(e.error) }));
    stream.open();
    peer.streams.push(stream);
    await within(kOperationMs, established, 'delta stream');
    response = {};
  } else {
    throw new Error(`unknown shadow call '${cmd.call}'`);
  }
  return { response };
}

// AWS IoT Jobs through the SDK's own jobs client.
async function jobs(cmd) {
  const client = peer.jobs();
  const thingName = cmd.thing;
  if (cmd.call === 'watch_next') {
    const stream = client.createNextJobExecutionChangedStream({ thingName });
    const subscribed = new Promise((resolve, reject) => {
      stream.on('subscriptionStatus', (e) => {
        if (e.type === 0) resolve();
        else if (e.type === 2) reject(new Error('the NextJobExecutionChanged subscription halted'));
      });
    });
    stream.on('incomingPublish', (e) => emit({ event: 'next_job', message: e.message }));
    stream.on('incomingPublishError', (e) => emit({ event: 'next_job_error', error: String(e.error) }));
    stream.open();
    peer.streams.push(stream);
    await within(kOperationMs, subscribed, 'createNextJobExecutionChangedStream');
    return {};
  }
  let response;
  if (cmd.call === 'get_pending') {
    response = await within(kOperationMs, client.getPendingJobExecutions({ thingName }),
      'getPendingJobExecutions');
  } else if (cmd.call === 'start_next') {
    response = await within(kOperationMs, client.startNextPendingJobExecution({
      thingName, statusDetails: cmd.status_details, stepTimeoutInMinutes: cmd.step_timeout,
    }), 'startNextPendingJobExecution');
  } else if (cmd.call === 'describe') {
    response = await within(kOperationMs,
      client.describeJobExecution({ thingName, jobId: cmd.job_id }), 'describeJobExecution');
  } else if (cmd.call === 'update') {
    response = await within(kOperationMs, client.updateJobExecution({
      thingName, jobId: cmd.job_id, status: cmd.status, statusDetails: cmd.status_details,
      expectedVersion: cmd.expected_version, includeJobExecutionState: true,
    }), 'updateJobExecution');
  } else {
    throw new Error(`unknown jobs call '${cmd.call}'`);
  }
  return { response };
}

// The service clients a peer makes on its connection, closed with it.
function close_clients(p) {
  for (const s of p.streams) s.close();
  p.streams = [];
  if (p.identity_client) p.identity_client.close();
  p.identity_client = undefined;
  if (p.shadow_client) p.shadow_client.close();
  p.shadow_client = undefined;
  if (p.jobs_client) p.jobs_client.close();
  p.jobs_client = undefined;
}

class Peer311 {
  streams = [];
  async connect(c) {
    const config = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path(c.cert, c.key)
      .with_certificate_authority_from_path(undefined, c.ca)
      .with_endpoint(c.host)
      .with_port(c.port)
      .with_client_id(c.client_id)
      .with_clean_session(true)
      .with_keep_alive_seconds(30)
      .with_timeout_ms(kOperationMs)
      .with_protocol_operation_timeout_ms(kOperationMs)
      .build();
    this.connection = new mqtt.MqttClient().new_connection(config);
    this.connection.on('message', (topic, payload) => {
      emit({ event: 'message', topic, payload: Buffer.from(payload).toString('utf8') });
    });
    this.connection.on('interrupt', (e) => emit({ event: 'disconnected', ...describe_error(e) }));
    try {
      const session_present = await within(c.timeout_ms || kOperationMs, this.connection.connect(), 'connect');
      return { session_present };
    } catch (e) {
      // A refused CONNACK leaves the connection object: release it so nothing retries.
      try {
        await within(kOperationMs, this.connection.disconnect(), 'disconnect');
      } catch (_) { /* already closed */ }
      this.connection = undefined;
      throw e;
    }
  }

  async subscribe(c) {
    const r = await within(kOperationMs, this.connection.subscribe(c.topic, c.qos), 'subscribe');
    // aws-c-mqtt reports the SUBACK's return code as the granted qos (0x80 = failure).
    return { qos: r.qos, error_code: r.error_code };
  }

  async publish(c) {
    const r = await within(kOperationMs, this.connection.publish(c.topic, c.payload, c.qos), 'publish');
    return { packet_id: r.packet_id };
  }

  async unsubscribe(c) {
    await within(kOperationMs, this.connection.unsubscribe(c.topic), 'unsubscribe');
    return {};
  }

  identity() {
    if (!this.identity_client) {
      this.identity_client = iotidentity.IotIdentityClientv2.newFromMqtt311(this.connection, kRrOptions);
    }
    return this.identity_client;
  }

  shadow() {
    if (!this.shadow_client) {
      this.shadow_client = iotshadow.IotShadowClientv2.newFromMqtt311(this.connection, kRrOptions);
    }
    return this.shadow_client;
  }

  jobs() {
    if (!this.jobs_client) {
      this.jobs_client = iotjobs.IotJobsClientv2.newFromMqtt311(this.connection, kRrOptions);
    }
    return this.jobs_client;
  }

  async disconnect() {
    close_clients(this);
    if (this.connection) await within(kOperationMs, this.connection.disconnect(), 'disconnect');
    this.connection = undefined;
    return {};
  }
}

class Peer5 {
  streams = [];
  async connect(c) {
    const config = iot.AwsIotMqtt5ClientConfigBuilder
      .newDirectMqttBuilderWithMtlsFromPath(c.host, c.cert, c.key)
      .withCertificateAuthorityFromPath(undefined, c.ca)
      .withPort(c.port)
      .withConnectProperties({ clientId: c.client_id, keepAliveIntervalSeconds: 30 })
      .withSessionBehavior(mqtt5.ClientSessionBehavior.Clean)
      .withConnackTimeoutMs(kOperationMs)
      .withAckTimeoutSeconds(kOperationMs / 1000)
      // A refused connect must not turn into a retry loop behind the test's back.
      .withMinReconnectDelayMs(60000)
      .withMaxReconnectDelayMs(60000)
      .build();
    this.client = new mqtt5.Mqtt5Client(config);
    this.client.on('messageReceived', (e) => {
      const p = e.message.payload;
      emit({ event: 'message', topic: e.message.topicName,
             payload: p === undefined ? '' : Buffer.from(p).toString('utf8') });
    });
    this.client.on('disconnection', (e) => {
      emit({ event: 'disconnected', ...describe_error(e.error),
             reason_code: e.disconnect ? e.disconnect.reasonCode : undefined });
    });
    const outcome = new Promise((resolve, reject) => {
      this.client.once('connectionSuccess', (e) => resolve({ session_present: e.connack.sessionPresent }));
      this.client.once('connectionFailure', (e) => {
        const err = e.error;
        err.reason_code = e.connack ? e.connack.reasonCode : undefined;
        reject(err);
      });
    });
    this.client.start();
    try {
      return await within(c.timeout_ms || kOperationMs, outcome, 'connect');
    } catch (e) {
      this.client.stop();
      this.client.close();
      this.client = undefined;
      const d = describe_error(e);
      if (e.reason_code !== undefined) d.reason_code = e.reason_code;
      throw Object.assign(new Error(d.error), { details: d });
    }
  }

  async subscribe(c) {
    const r = await within(kOperationMs,
      this.client.subscribe({ subscriptions: [{ topicFilter: c.topic, qos: c.qos }] }), 'subscribe');
    return { reason_codes: r.reasonCodes };
  }

  async publish(c) {
    const r = await within(kOperationMs,
      this.client.publish({ topicName: c.topic, payload: c.payload, qos: c.qos }), 'publish');
    // QoS 1: the SDK resolves with the PUBACK itself (reason 0 = success, 16 = no matching
    // subscribers, 135 = not authorized); QoS 0: with nothing.
    return { reason_code: r ? r.reasonCode : undefined };
  }

  async unsubscribe(c) {
    await within(kOperationMs, this.client.unsubscribe({ topicFilters: [c.topic] }), 'unsubscribe');
    return {};
  }

  identity() {
    if (!this.identity_client) {
      this.identity_client = iotidentity.IotIdentityClientv2.newFromMqtt5(this.client, kRrOptions);
    }
    return this.identity_client;
  }

  shadow() {
    if (!this.shadow_client) {
      this.shadow_client = iotshadow.IotShadowClientv2.newFromMqtt5(this.client, kRrOptions);
    }
    return this.shadow_client;
  }

  jobs() {
    if (!this.jobs_client) {
      this.jobs_client = iotjobs.IotJobsClientv2.newFromMqtt5(this.client, kRrOptions);
    }
    return this.jobs_client;
  }

  async disconnect() {
    close_clients(this);
    if (!this.client) return {};
    const stopped = new Promise((resolve) => this.client.once('stopped', resolve));
    this.client.stop();
    await within(kOperationMs, stopped, 'disconnect');
    this.client.close();
    this.client = undefined;
    return {};
  }
}

let peer;
// Commands run one after another, in the order they came.
let queue = Promise.resolve();

async function run(cmd) {
  switch (cmd.op) {
    case 'connect':
      peer = cmd.version === 5 ? new Peer5() : new Peer311();
      return peer.connect(cmd);
    case 'subscribe': return peer.subscribe(cmd);
    case 'publish': return peer.publish(cmd);
    case 'unsubscribe': return peer.unsubscribe(cmd);
    case 'identity': return identity(cmd);
    case 'shadow': return shadow(cmd);
    case 'jobs': return jobs(cmd);
    case 'disconnect': return peer ? peer.disconnect() : {};
    case 'exit':
      if (peer) { try { await peer.disconnect(); } catch (_) { /* leaving anyway */ } }
      process.exit(0);
      return {};
    default: throw new Error(`unknown op '${cmd.op}'`);
  }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    emit({ ok: false, error: `not JSON: ${line}` });
    return;
  }
  queue = queue.then(() => run(cmd))
    .then((r) => emit({ id: cmd.id, ok: true, ...r }))
    .catch((e) => emit({ id: cmd.id, ok: false, ...(e.details || describe_error(e)) }));
});
// The test went away (or closed our stdin on purpose): leave without waiting for the SDK.
lines.on('close', () => queue.finally(() => process.exit(0)));
emit({ event: 'ready' });
