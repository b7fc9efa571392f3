// A real, certified OpenID provider (the npm package `oidc-provider`) for the end-to-end tests.
//
//   node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// Listens on 127.0.0.1:PORT, issuer http://127.0.0.1:PORT, with one confidential client for the
// gateway. Its development login screen accepts any login name; the account's claims are made
// from that name: `preferred_username` is the name, `email` is NAME@example.test, and `groups` is
// ["llm-admins"] for names starting with "boss", else ["staff"]. Claims reach the gateway through
// the userinfo endpoint (the ID token carries only `sub`, as with many real providers).
// Prints "ready ISSUER" on stdout once it accepts connections.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
if (!redirectUri) {
  console.error('usage: node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'name'],
    groups: ['groups'],
  },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['authproxy-tests-only-not-a-secret'] },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          preferred_username: sub,
          name: sub,
          email: `${sub}@example.test`,
          email_verified: true,
          groups: sub.startsWith('boss') ? ['llm-admins'] : ['staff'],
        };
      },
    };
  },
});

const server = provider.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
