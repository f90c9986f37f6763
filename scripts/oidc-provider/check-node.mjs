// Exit 0 when this Node.js can run oidc-provider 9 (20.18 or later), else 3 with a message.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 18)) {
  console.error(`oidc-provider 9 needs Node.js 20.18 or later; this is ${process.versions.node}`);
  process.exit(3);
}
