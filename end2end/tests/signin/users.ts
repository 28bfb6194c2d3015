// The users of the "signin" server (playwright.config.ts writes their
// argon2 hashes, made by `eventscope hash-password`, to its config file).
export const USERS = [
  { name: "vera", password: "viewer-pass-1", role: "viewer" },
  { name: "otto", password: "operator-pass-2", role: "operator" },
  { name: "ada", password: "admin-pass-3", role: "admin" },
  // A viewer with a subject scope: the demo's orders only.
  { name: "sam", password: "scoped-pass-4", role: "viewer", scope: "orders" },
] as const;

// What the config file adds: sam's scope, and the demo's customer ids
// masked for viewers.
export const ACCESS_TABLES = [
  "[scopes.orders]",
  'allow = ["orders.>"]',
  "",
  "[[masks]]",
  'fields = ["customer"]',
  'roles = ["viewer"]',
].join("\n");

export function password(name: (typeof USERS)[number]["name"]): string {
  const user = USERS.find((u) => u.name === name);
  if (!user) throw new Error(`no user ${name}`);
  return user.password;
}
