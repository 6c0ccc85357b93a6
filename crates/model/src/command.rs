//! Command lines: hako splits an app's `--cmd` into words like a shell and expands `$PORT` and
//! the app's other environment variables itself, so it works in images without a shell.

/// A command line that cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("the command is empty")]
    Empty,
    #[error("unterminated {0} quote in the command")]
    UnterminatedQuote(&'static str),
    #[error("the command ends with a lone backslash")]
    TrailingBackslash,
    #[error("unterminated ${{…}} in the command")]
    UnterminatedBrace,
}

/// Splits `line` into words, expanding `$NAME` and `${NAME}` with `lookup` (unknown names
/// expand to nothing, as in a shell). Single quotes are literal; inside double quotes only
/// `$`, `\"`, `\\` and `\$` are special. No globbing, no pipes: one program and its arguments.
pub fn split(
    line: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, CommandError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(CommandError::UnterminatedQuote("single")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&n @ ('"' | '\\' | '$')) => {
                                cur.push(n);
                                chars.next();
                            }
                            _ => cur.push('\\'),
                        },
                        Some('$') => expand(&mut chars, &mut cur, lookup)?,
                        Some(ch) => cur.push(ch),
                        None => return Err(CommandError::UnterminatedQuote("double")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => return Err(CommandError::TrailingBackslash),
                }
            }
            '$' => {
                in_word = true;
                expand(&mut chars, &mut cur, lookup)?;
            }
            other => {
                in_word = true;
                cur.push(other);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() || words[0].is_empty() {
        return Err(CommandError::Empty);
    }
    Ok(words)
}

fn expand(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), CommandError> {
    let mut name = String::new();
    if chars.peek() == Some(&'{') {
        chars.next();
        loop {
            match chars.next() {
                Some('}') => break,
                Some(c) => name.push(c),
                None => return Err(CommandError::UnterminatedBrace),
            }
        }
    } else {
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if name.is_empty() {
            out.push('$');
            return Ok(());
        }
    }
    out.push_str(&lookup(&name).unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("8080".into()),
            "DOCROOT" => Some("/app/public dir".into()),
            _ => None,
        }
    }

    #[test]
    fn splits_and_expands() {
        assert_eq!(
            split("php -S 0.0.0.0:$PORT -t /app", &env).unwrap(),
            ["php", "-S", "0.0.0.0:8080", "-t", "/app"]
        );
        assert_eq!(
            split("httpd -f -p ${PORT} -h \"$DOCROOT\"", &env).unwrap(),
            ["httpd", "-f", "-p", "8080", "-h", "/app/public dir"]
        );
        assert_eq!(
            split("sh -c 'echo $PORT'", &env).unwrap(),
            ["sh", "-c", "echo $PORT"]
        );
        assert_eq!(
            split(r#"echo "a \"b\" \$PORT" c\ d $NOPE x"#, &env).unwrap(),
            ["echo", "a \"b\" $PORT", "c d", "", "x"]
        );
        assert_eq!(split("a $ b", &env).unwrap(), ["a", "$", "b"]);
    }

    #[test]
    fn rejects_broken_lines() {
        assert_eq!(split("  ", &env), Err(CommandError::Empty));
        assert_eq!(split("$NOPE", &env), Err(CommandError::Empty));
        assert_eq!(
            split("echo 'x", &env),
            Err(CommandError::UnterminatedQuote("single"))
        );
        assert_eq!(
            split("echo \"x", &env),
            Err(CommandError::UnterminatedQuote("double"))
        );
        assert_eq!(
            split("echo x\\", &env),
            Err(CommandError::TrailingBackslash)
        );
        assert_eq!(
            split("echo ${PORT", &env),
            Err(CommandError::UnterminatedBrace)
        );
    }
}
