// A real OpenID provider for the portal's tests and demo (oidc-provider, OpenID-certified).
// Configured entirely by one JSON argument: port, issuer, clients, accounts.

// oidc-provider 9 calls crypto.hash and URL.parse, which Node.js has since 20.18: on an older
// Node (Debian 12 and Ubuntu 24.04 ship 18) it would start and fail at the first request.
// check-node.mjs stops first with a message and exit status 3 (scripts/demo.sh reads it).
import './check-node.mjs';

const { default: Provider } = await import('oidc-provider');

const config = JSON.parse(process.argv[2]);
const accounts = new Map(Object.entries(config.accounts));

const provider = new Provider(config.issuer, {
  clients: config.clients,
  claims: { openid: ['sub'], profile: ['preferred_username', 'given_name', 'family_name', 'groups'], email: ['email'] },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  async findAccount(ctx, id) {
    const claims = accounts.get(id);
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
  // Tests and demo: consent is given for the registered clients without asking.
  async loadExistingGrant(ctx) {
    const grant = new provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile email');
    await grant.save();
    return grant;
  },
  pkce: { required: () => false },
  cookies: { keys: [config.cookieKey || 'test-only-cookie-key'] },
});
provider.proxy = false;
provider.listen(config.port, '127.0.0.1', () => { console.log(`listening ${config.issuer}`); });
