/**
 * SigV4 signing of the client's requests, for an API deployed with the IAM authorizer (service
 * `execute-api`), with the AWS SDK's signer. Kept apart from the client's core so that a client
 * without IAM does not load it. The credentials are given (in Node, the default chain:
 * `defaultProvider()` of `@aws-sdk/credential-provider-node`, as the CLI does).
 */
import { Sha256Js } from "@smithy/core/checksum";
import { SignatureV4 } from "@smithy/signature-v4";
import type { OutgoingRequest, SignHook } from "./client";

export type Credentials = ConstructorParameters<typeof SignatureV4>[0]["credentials"];

export interface SigV4Options {
  /** The API's region (see `regionOfUrl`). */
  region: string;
  /** Static credentials or a provider of them. */
  credentials: Credentials;
  /** Default `execute-api`. */
  service?: string;
}

/** A sign hook for `createClient({sign})`: the SigV4 headers of each request. */
export function sigV4Signer({ region, credentials, service = "execute-api" }: SigV4Options): SignHook {
  const signer = new SignatureV4({ region, service, credentials, sha256: Sha256Js });
  return async (request: OutgoingRequest) => {
    const { url } = request;
    const query: Record<string, string> = {};
    for (const [name, value] of url.searchParams) query[name] = value;
    const signed = await signer.sign({
      method: request.method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname,
      query,
      headers: { ...request.headers, host: url.host },
      body: request.body,
    });
    // fetch sets the host itself (and may not be given one)
    const { host: _host, ...headers } = signed.headers;
    return headers;
  };
}

/** The region of an API Gateway URL (`https://ID.execute-api.REGION.amazonaws.com/...`), if it is one. */
export function regionOfUrl(url: string): string | undefined {
  return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com/i.exec(new URL(url).hostname)?.[1];
}
