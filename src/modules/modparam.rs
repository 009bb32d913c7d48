//! Kamailio-style module parameters (`[modparam.<module>]`), validated against each module's declaration.

use std::collections::BTreeMap;

/// Type of a module parameter, as Kamailio's `param_export_t` declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `PARAM_INT`: an integer (TOML booleans are accepted as 0/1, like `yes`/`no` in kamailio.cfg).
    Int,
    /// `PARAM_STR`: a string.
    Str,
    /// A repeatable string parameter: a list or one value.
    StrList,
}

/// One module's parameter declarations.
pub struct ModuleParams {
    /// Kamailio module name.
    pub module: &'static str,
    /// (parameter name, kind).
    pub params: &'static [(&'static str, ParamKind)],
}

/// A validated parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// Integer value.
    Int(i64),
    /// String value.
    Str(String),
    /// Repeated string values.
    List(Vec<String>),
}

/// All validated module parameters.
#[derive(Debug, Clone, Default)]
pub struct ModParams(BTreeMap<(String, String), ParamValue>);

impl ModParams {
    /// Integer parameter, if set.
    pub fn get_int(&self, module: &str, name: &str) -> Option<i64> {
        match self.0.get(&(module.to_string(), name.to_string())) {
            Some(ParamValue::Int(i)) => Some(*i),
            _ => None,
        }
    }
    /// String parameter, if set.
    pub fn get_str(&self, module: &str, name: &str) -> Option<&str> {
        match self.0.get(&(module.to_string(), name.to_string())) {
            Some(ParamValue::Str(s)) => Some(s),
            _ => None,
        }
    }
    /// Repeatable parameter values (empty when unset).
    pub fn get_list(&self, module: &str, name: &str) -> Vec<String> {
        match self.0.get(&(module.to_string(), name.to_string())) {
            Some(ParamValue::List(v)) => v.clone(),
            Some(ParamValue::Str(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }
}

/// Check `[modparam.*]` tables; returns the values and the names of modules ksrd lacks,
/// or `(key, message)` for the first bad parameter.
pub fn validate(
    raw: &BTreeMap<String, toml::Table>,
) -> Result<(ModParams, Vec<String>), (String, String)> {
    let mut out = ModParams::default();
    let mut unknown = Vec::new();
    for (module, table) in raw {
        let Some(decl) = super::MODULE_PARAMS.iter().find(|m| m.module == module) else {
            unknown.push(module.clone());
            continue;
        };
        for (name, value) in table {
            let key = format!("modparam.{module}.{name}");
            let Some((_, kind)) = decl.params.iter().find(|(n, _)| n == name) else {
                let known: Vec<&str> = decl.params.iter().map(|(n, _)| *n).collect();
                return Err((
                    key,
                    format!(
                        "unknown parameter of module {module} (known: {})",
                        known.join(", ")
                    ),
                ));
            };
            let v = convert(*kind, value).map_err(|m| (key, m))?;
            out.0.insert((module.clone(), name.clone()), v);
        }
    }
    Ok((out, unknown))
}

fn convert(kind: ParamKind, v: &toml::Value) -> Result<ParamValue, String> {
    match (kind, v) {
        (ParamKind::Int, toml::Value::Integer(i)) => Ok(ParamValue::Int(*i)),
        (ParamKind::Int, toml::Value::Boolean(b)) => Ok(ParamValue::Int(*b as i64)),
        (ParamKind::Int, toml::Value::String(s)) => match s.trim() {
            "yes" | "on" | "true" => Ok(ParamValue::Int(1)),
            "no" | "off" | "false" => Ok(ParamValue::Int(0)),
            t => t
                .parse()
                .map(ParamValue::Int)
                .map_err(|_| format!("expected an integer, got {s:?}")),
        },
        (ParamKind::Str, toml::Value::String(s)) => Ok(ParamValue::Str(s.clone())),
        (ParamKind::Str, toml::Value::Integer(i)) => Ok(ParamValue::Str(i.to_string())),
        (ParamKind::StrList, toml::Value::String(s)) => Ok(ParamValue::List(vec![s.clone()])),
        (ParamKind::StrList, toml::Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("expected strings, got {}", x.type_str()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(ParamValue::List),
        (k, other) => Err(format!(
            "expected {}, got {}",
            match k {
                ParamKind::Int => "an integer",
                ParamKind::Str => "a string",
                ParamKind::StrList => "a string or a list of strings",
            },
            other.type_str()
        )),
    }
}
