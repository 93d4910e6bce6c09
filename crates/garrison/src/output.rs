//! Printing results: pretty JSON (default) or a table, after an optional JMESPath `--query`.

use serde_json::Value;

pub fn apply_query(v: &Value, query: Option<&str>) -> Result<Value, String> {
    let Some(q) = query else { return Ok(v.clone()) };
    let expr = jmespath::compile(q).map_err(|e| format!("--query: not a valid JMESPath expression: {e}"))?;
    let data = jmespath::Variable::from_json(&v.to_string()).map_err(|e| format!("--query: {e}"))?;
    let out = expr.search(data).map_err(|e| format!("--query: {e}"))?;
    serde_json::to_value(&*out).map_err(|e| format!("--query: {e}"))
}

/// A value as table text. Control characters (an escape sequence in a name would drive the
/// operator's terminal; a newline would forge rows) are shown escaped, as `\u{1b}`.
fn cell(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    safe(&text)
}

fn safe(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

/// A table for an array of objects (columns: the keys of the first row, in order), or
/// key/value rows for one object; anything else prints as JSON.
pub fn table(v: &Value) -> String {
    let rows: Vec<&serde_json::Map<String, Value>> = match v {
        Value::Array(a) if a.iter().all(Value::is_object) && !a.is_empty() => {
            a.iter().filter_map(Value::as_object).collect()
        }
        Value::Object(m) => {
            let width = m.keys().map(|k| k.len()).max().unwrap_or(0);
            return m.iter().map(|(k, v)| format!("{:width$}  {}", safe(k), cell(v))).collect::<Vec<_>>().join("\n");
        }
        Value::Array(a) => return a.iter().map(cell).collect::<Vec<_>>().join("\n"),
        other => return cell(other),
    };
    let cols: Vec<&String> = rows[0].keys().collect();
    let cells: Vec<Vec<String>> =
        rows.iter().map(|r| cols.iter().map(|c| cell(r.get(*c).unwrap_or(&Value::Null))).collect()).collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|r| r[i].chars().count().min(60)).max().unwrap_or(0).max(c.len()))
        .collect();
    let line = |vals: Vec<String>| {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| {
                let v: String = v.chars().take(60).collect();
                format!("{v:w$}")
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(cols.iter().map(|c| safe(&c.to_uppercase())).collect())];
    out.extend(cells.into_iter().map(line));
    out.join("\n")
}

pub fn render(v: &Value, format: &str) -> String {
    match format {
        "table" => table(v),
        _ => serde_json::to_string_pretty(v).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_and_table() {
        let v = json!([{"id": "A", "name": "x", "status": {"status": "ok"}}, {"id": "B", "name": "yy", "status": {"status": "new"}}]);
        assert_eq!(apply_query(&v, Some("[].status.status")).unwrap(), json!(["ok", "new"]));
        assert!(apply_query(&v, Some("[.")).is_err());
        let t = table(&apply_query(&v, Some("[].{id: id, name: name}")).unwrap());
        assert_eq!(t, "ID  NAME\nA   x\nB   yy");
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let v = json!([{"name": "evil\u{1b}[2J\nforged row", "id": "A"}]);
        let t = table(&v);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'), "{t:?}");
        assert_eq!(t.lines().count(), 2, "{t:?}");
        assert!(t.contains("\\u{1b}[2J\\u{a}forged row"), "{t:?}");
        let one = table(&json!({"k\u{7}": "v\u{9b}x"}));
        assert!(!one.chars().any(char::is_control), "{one:?}");
    }
}
