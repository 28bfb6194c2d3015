// The users of the "signin" server (playwright.config.ts writes their
// argon2 hashes, made by `eventscope hash-password`, to its config file).
export const USERS = [
  { name: "vera", password: "viewer-pass-1", role: "viewer" },
  { name: "otto", password: "operator-pass-2", role: "operator" },
  { name: "ada", password: "admin-pass-3", role: "admin" },
] as const;

export function password(name: (typeof USERS)[number]["name"]): string {
  const user = USERS.find((u) => u.name === name);
  if (!user) throw new Error(`no user ${name}`);
  return user.password;
}
