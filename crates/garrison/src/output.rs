//! Printing results: pretty JSON (default) or a table, after an optional JMESPath `--query`.

use serde_json::Value;

pub fn apply_query(v: &Value, query: Option<&str>) -> Result<Value, String> {
    let Some(q) = query else { return Ok(v.clone()) };
    let expr = jmespath::compile(q).map_err(|e| format!("--query: not a valid JMESPath expression: {e}"))?;
    let data = jmespath::Variable::from_json(&v.to_string()).map_err(|e| format!("--query: {e}"))?;
    let out = expr.search(data).map_err(|e| format!("--query: {e}"))?;
    serde_json::to_value(&*out).map_err(|e| format!("--query: {e}"))
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
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
            return m.iter().map(|(k, v)| format!("{k:width$}  {}", cell(v))).collect::<Vec<_>>().join("\n");
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
    let mut out = vec![line(cols.iter().map(|c| c.to_uppercase()).collect())];
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
}
