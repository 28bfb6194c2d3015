//! Roles from group names: what a reverse proxy (`--auth proxy`) or an
//! OpenID Connect provider (`--auth oidc`) says a user belongs to, mapped through an ordered list of rules
//! (`[[role_mapping]]`: a group named exactly, or matching a regular
//! expression) to a role; the first rule that matches wins, else the
//! default role (`default_role`; `"none"`: no access).

use super::Role;
use super::users::Grant;
use serde::Deserialize;

/// A `[[role_mapping]]` entry of the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRule {
    /// A group named exactly.
    #[serde(default)]
    pub group: Option<String>,
    /// A regular expression a group must match (whole name: anchor it
    /// yourself if needed, e.g. `^team-.*-oncall$`).
    #[serde(default)]
    pub group_regex: Option<String>,
    /// The role the rule gives.
    pub role: Role,
    /// The subject scope (`[scopes.NAME]`) it gives with the role, if any.
    #[serde(default)]
    pub scope: Option<String>,
}

/// `default_role` in the config file: a role, or `none` (no access).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultRole {
    /// Users no rule matches get no access.
    #[default]
    None,
    /// Users no rule matches are viewers.
    Viewer,
    /// … operators.
    Operator,
    /// … admins.
    Admin,
}

impl DefaultRole {
    fn role(self) -> Option<Role> {
        match self {
            DefaultRole::None => None,
            DefaultRole::Viewer => Some(Role::Viewer),
            DefaultRole::Operator => Some(Role::Operator),
            DefaultRole::Admin => Some(Role::Admin),
        }
    }
}

/// Groups read from one request at most, and bytes of one group's name.
pub const MAX_GROUPS: usize = 256;
/// Bytes of a group name looked at.
pub const MAX_GROUP_BYTES: usize = 256;
/// Size a compiled group expression may take (a hostile or careless
/// pattern cannot take the memory).
const REGEX_SIZE: usize = 256 << 10;

enum Matcher {
    Exact(String),
    Pattern(regex::Regex),
}

/// The rules, compiled.
pub struct RoleMap {
    rules: Vec<(Matcher, Grant)>,
    default: Option<Grant>,
}

impl std::fmt::Debug for RoleMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleMap")
            .field("rules", &self.rules.len())
            .field("default", &self.default)
            .finish()
    }
}

/// Why a rule is refused: the key at fault and what is wrong.
pub fn check_rule(rule: &RoleRule) -> Result<(), (&'static str, String)> {
    compile(rule).map(|_| ())
}

fn compile(rule: &RoleRule) -> Result<Matcher, (&'static str, String)> {
    match (&rule.group, &rule.group_regex) {
        (Some(g), None) => Ok(Matcher::Exact(g.clone())),
        (None, Some(p)) => regex::RegexBuilder::new(p)
            .size_limit(REGEX_SIZE)
            .build()
            .map(Matcher::Pattern)
            .map_err(|e| ("group_regex", format!("not a regular expression: {e}"))),
        _ => Err((
            "group",
            "give either `group` (a name) or `group_regex`, not both or neither".to_string(),
        )),
    }
}

impl RoleMap {
    /// From the config's rules (already checked: a rule that does not
    /// compile is left out).
    pub fn new(rules: &[RoleRule], default: DefaultRole, default_scope: Option<&str>) -> RoleMap {
        RoleMap {
            rules: rules
                .iter()
                .filter_map(|r| {
                    compile(r).ok().map(|m| {
                        let grant = Grant {
                            role: r.role,
                            scope: r.scope.clone(),
                        };
                        (m, grant)
                    })
                })
                .collect(),
            default: default.role().map(|role| Grant {
                role,
                scope: default_scope.map(str::to_string),
            }),
        }
    }

    /// The role of a user in `groups` (a header's comma-separated list):
    /// the first rule that matches one of them, else the default.
    pub fn role_for(&self, groups: &str) -> Option<Grant> {
        let groups: Vec<&str> = groups.split(',').map(str::trim).collect();
        self.role_for_groups(&groups)
    }

    /// The role of a user in `groups`: the first rule that matches one of
    /// them (the first [`MAX_GROUPS`] of at most [`MAX_GROUP_BYTES`] each),
    /// else the default.
    pub fn role_for_groups(&self, groups: &[&str]) -> Option<Grant> {
        let groups: Vec<&str> = groups
            .iter()
            .copied()
            .filter(|g| !g.is_empty() && g.len() <= MAX_GROUP_BYTES)
            .take(MAX_GROUPS)
            .collect();
        self.rules
            .iter()
            .find(|(m, _)| {
                groups.iter().any(|g| match m {
                    Matcher::Exact(name) => name == g,
                    Matcher::Pattern(re) => re.is_match(g),
                })
            })
            .map(|(_, grant)| grant.clone())
            .or_else(|| self.default.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(group: Option<&str>, regex: Option<&str>, role: Role) -> RoleRule {
        RoleRule {
            group: group.map(str::to_string),
            group_regex: regex.map(str::to_string),
            role,
            scope: (role == Role::Viewer).then(|| "viewers".to_string()),
        }
    }

    fn role(grant: Option<Grant>) -> Option<Role> {
        grant.map(|g| g.role)
    }

    #[test]
    fn the_first_rule_that_matches_wins_else_the_default() {
        let rules = [
            rule(Some("platform-admins"), None, Role::Admin),
            rule(None, Some("^team-.*-oncall$"), Role::Operator),
            rule(Some("everyone"), None, Role::Viewer),
        ];
        let map = RoleMap::new(&rules, DefaultRole::None, None);
        assert_eq!(
            role(map.role_for("everyone, platform-admins")),
            Some(Role::Admin)
        );
        assert_eq!(
            role(map.role_for("team-pay-oncall,everyone")),
            Some(Role::Operator)
        );
        assert_eq!(role(map.role_for("x-team-pay-oncall")), None, "anchored");
        assert_eq!(role(map.role_for("everyone")), Some(Role::Viewer));
        assert_eq!(role(map.role_for("contractors")), None);
        assert_eq!(role(map.role_for("")), None);
        let open = RoleMap::new(&rules, DefaultRole::Viewer, Some("guests"));
        assert_eq!(
            open.role_for("contractors"),
            Some(Grant {
                role: Role::Viewer,
                scope: Some("guests".to_string())
            })
        );
        assert_eq!(
            map.role_for("everyone").and_then(|g| g.scope),
            Some("viewers".to_string()),
            "a rule gives its scope with its role"
        );
        // A group named exactly is not a pattern.
        let dots = RoleMap::new(
            &[rule(Some("a.b"), None, Role::Admin)],
            DefaultRole::None,
            None,
        );
        assert_eq!(role(dots.role_for("axb")), None);
        assert!(check_rule(&rule(None, Some("("), Role::Admin)).is_err());
        assert!(check_rule(&rule(Some("a"), Some("b"), Role::Admin)).is_err());
        assert!(check_rule(&rule(None, None, Role::Admin)).is_err());
        assert!(
            check_rule(&rule(None, Some("x{1000}{1000}"), Role::Admin)).is_err(),
            "too big"
        );
    }
}
