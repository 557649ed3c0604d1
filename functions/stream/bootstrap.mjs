// biome-ignore-all lint/style/useTemplate: the text sits in a CloudFormation template, where a dollar-brace reads as a parameter
// The stream task's container command (`node --input-type=module -e <this file>`): the public
// Node image has no AWS tooling, so this fetches the esbuild bundle (an S3 asset of the deploy)
// with the task role's credentials, signing the GET with Signature V4 by hand (node:crypto only),
// writes the bundle and the strategy config to /tmp, and imports the bundle.
// No template literals: the text sits in a CloudFormation template, where a dollar-brace reads as
// a parameter.
import { createHash, createHmac } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';

const env = process.env;
const need = (name) => {
  const value = env[name];
  if (!value) throw new Error('stream bootstrap: ' + name + ' is not set');
  return value;
};
const bucket = need('STREAM_BUNDLE_BUCKET');
const key = need('STREAM_BUNDLE_KEY');
const region = need('AWS_REGION');
const credentialsUrl =
  env.AWS_CONTAINER_CREDENTIALS_FULL_URI ??
  'http://169.254.170.2' + need('AWS_CONTAINER_CREDENTIALS_RELATIVE_URI');
const origin = env.STREAM_BUNDLE_ORIGIN ?? 'https://' + bucket + '.s3.' + region + '.amazonaws.com';

const credentialsResponse = await fetch(credentialsUrl);
if (!credentialsResponse.ok)
  throw new Error('stream bootstrap: credentials: HTTP ' + credentialsResponse.status);
const credentials = await credentialsResponse.json();

const sha256 = (text) => createHash('sha256').update(text).digest('hex');
const hmac = (k, text) => createHmac('sha256', k).update(text).digest();
const now = new Date(env.STREAM_BOOTSTRAP_NOW ?? Date.now());
const amzDate = now
  .toISOString()
  .replace(/[-:]/g, '')
  .replace(/\.\d{3}/, '');
const day = amzDate.slice(0, 8);
const host = new URL(origin).host;
const path = '/' + key.split('/').map(encodeURIComponent).join('/');
const payloadHash = sha256('');
const headers = { host, 'x-amz-content-sha256': payloadHash, 'x-amz-date': amzDate };
if (credentials.Token) headers['x-amz-security-token'] = credentials.Token;
const names = Object.keys(headers).sort();
const canonical = [
  'GET',
  path,
  '',
  ...names.map((n) => n + ':' + headers[n]),
  '',
  names.join(';'),
  payloadHash,
].join('\n');
const scope = day + '/' + region + '/s3/aws4_request';
const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
const signingKey = hmac(
  hmac(hmac(hmac('AWS4' + credentials.SecretAccessKey, day), region), 's3'),
  'aws4_request',
);
const signature = createHmac('sha256', signingKey).update(toSign).digest('hex');
const authorization =
  'AWS4-HMAC-SHA256 Credential=' +
  credentials.AccessKeyId +
  '/' +
  scope +
  ', SignedHeaders=' +
  names.join(';') +
  ', Signature=' +
  signature;

const sent = { ...headers, authorization };
delete sent.host;
const response = await fetch(origin + path, { headers: sent });
if (!response.ok) {
  throw new Error(
    'stream bootstrap: s3://' +
      bucket +
      '/' +
      key +
      ': HTTP ' +
      response.status +
      ' ' +
      (await response.text()),
  );
}
const dir = env.STREAM_BUNDLE_DIR ?? '/tmp/quantshift-stream';
mkdirSync(dir + '/config', { recursive: true });
writeFileSync(dir + '/index.mjs', Buffer.from(await response.arrayBuffer()));
writeFileSync(dir + '/config/strategy.yaml', need('QUANTSHIFT_CONFIG_YAML'));
process.env.QUANTSHIFT_CONFIG = dir + '/config/strategy.yaml';
if (env.STREAM_BOOTSTRAP_FETCH_ONLY !== 'true') await import(dir + '/index.mjs');
