// The local lab's OpenID Provider for reviewers: npm `oidc-provider` (a certified OP), run
// by the lab like every other component (harness/lab/src/components/oidc_provider.rs) and
// configured by it through the environment (names in wire/src/env/oidc_provider.rs):
//
//   PORT, BIND_ADDR           where to listen (the lab: 127.0.0.1 only)
//   OIDC_ISSUER               the issuer URL (http://127.0.0.1:PORT)
//   OIDC_SIGNING_KEY_FILE     the ES256 signing key the lab generated (PKCS#8, DER)
//   OIDC_JWKS_FILE            its public half as a JWKS (the gate verifies with it): kid, alg
//   OIDC_USERS_FILE           [{"username", "password", "groups": [..]}]
//   OIDC_CLIENTS_FILE         [{"client_id", "client_secret", "redirect_uris": [..]}]
//   OIDC_ID_TOKEN_TTL_SEC     ID token lifetime (default 3600)
//
// Sign-in is a plain user-name and password form of our own (no dev interactions, which
// accept any password); consent is implied for the lab's own clients. The ID token carries
// `preferred_username` and `groups` itself. Code flow only, PKCE required.

import { createPrivateKey, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import Provider from "oidc-provider";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    console.error(`oidc-provider: ${name} is not set`);
    process.exit(2);
  }
  return value;
};
const readJson = (name) => JSON.parse(readFileSync(env(name), "utf8"));

const port = Number(env("PORT"));
const bind = env("BIND_ADDR", "127.0.0.1");
const issuer = env("OIDC_ISSUER");
const publicJwks = readJson("OIDC_JWKS_FILE");
const users = readJson("OIDC_USERS_FILE");
const clients = readJson("OIDC_CLIENTS_FILE");
const idTokenTtl = Number(env("OIDC_ID_TOKEN_TTL_SEC", "3600"));

// The lab's key: d from the PKCS#8 file, kid and alg from the public JWKS the gate reads.
const publicKey = publicJwks.keys[0];
const privateJwk = createPrivateKey({
  key: readFileSync(env("OIDC_SIGNING_KEY_FILE")),
  format: "der",
  type: "pkcs8",
}).export({ format: "jwk" });
const signingKey = { ...privateJwk, kid: publicKey.kid, alg: publicKey.alg, use: "sig" };

const byName = new Map(users.map((u) => [u.username, u]));

function passwordMatches(user, given) {
  const a = Buffer.from(String(user?.password ?? ""));
  const b = Buffer.from(String(given ?? ""));
  return user !== undefined && a.length === b.length && timingSafeEqual(a, b);
}

const provider = new Provider(issuer, {
  clients: clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
    id_token_signed_response_alg: "ES256",
  })),
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString("hex")] },
  scopes: ["openid", "profile", "groups"],
  claims: {
    openid: ["sub"],
    profile: ["preferred_username", "name"],
    groups: ["groups"],
  },
  // The ID token itself carries the scopes' claims (hitl-ui and the gate read them there).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  ttl: { IdToken: idTokenTtl, AccessToken: idTokenTtl, AuthorizationCode: 60, Interaction: 600, Session: 8 * 3600, Grant: 8 * 3600 },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const user = byName.get(id);
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, name: id, groups: user.groups ?? [] };
      },
    };
  },
  // Consent is implied: the lab's clients are its own. Each sign-in gets its grant.
  async loadExistingGrant(ctx) {
    const { Grant } = ctx.oidc.provider;
    const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const grant = await Grant.find(grantId);
      if (grant) return grant;
    }
    const grant = new Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid profile groups");
    await grant.save();
    return grant;
  },
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// No form-action in the CSP: the form's redirect chain ends at the client's callback, another
// origin, which Chromium would refuse under form-action 'self'.
function page(res, status, uid, error) {
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · hitl-lab OpenID Provider</title>
<style>body{font:16px system-ui;max-width:22rem;margin:4rem auto}label,input,button{display:block;width:100%;margin:.3rem 0}input{padding:.4rem}button{padding:.5rem}.error{color:#a00}</style></head>
<body><h1>hitl-lab identity provider</h1><p>Sign in to review privileged tool calls.</p>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ""}
<form method="post" action="/interaction/${escape(uid)}/login">
<label for="username">User name</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form></body></html>`);
}

async function formBody(req) {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16 * 1024) throw new Error("form too large");
  }
  return new URLSearchParams(body);
}

// Our sign-in pages; everything else is the provider's.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === "GET") {
    if (details.prompt.name === "login") return page(res, 200, details.uid);
    // Consent: granted by loadExistingGrant; finish at once.
    return provider.interactionFinished(req, res, { consent: {} }, { mergeWithLastSubmission: true });
  }
  const form = await formBody(req);
  const username = (form.get("username") ?? "").trim();
  if (!passwordMatches(byName.get(username), form.get("password"))) {
    console.log(`sign-in failed for ${JSON.stringify(username)}`);
    return page(res, 401, details.uid, "Wrong user name or password.");
  }
  console.log(`signed in ${JSON.stringify(username)}`);
  return provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
}

const handle = provider.callback();
const server = http.createServer(async (req, res) => {
  try {
    const path = new URL(req.url, issuer).pathname;
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      return res.end("ok");
    }
    if (path.startsWith("/interaction/")) return await interaction(req, res);
    return handle(req, res);
  } catch (err) {
    console.error(`oidc-provider: ${req.method} ${req.url}: ${err.message}`);
    if (!res.headersSent) {
      res.writeHead(400, { "content-type": "text/plain; charset=utf-8" });
      res.end(`${err.message}\n`);
    }
  }
});
server.listen(port, bind, () => console.log(`oidc-provider ${issuer} listening on ${bind}:${port}`));
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
