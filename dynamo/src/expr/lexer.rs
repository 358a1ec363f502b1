//! Splits an expression's text into tokens. It never fails: a character no
//! token starts with becomes an `Unknown` token, which the parser refuses
//! where it stands (so the error names it, as DynamoDB's does: `token: "_"`).

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A letter, then letters, digits and underscores: an attribute name,
    /// a function name or a keyword (the parser tells which).
    Name,
    /// `#` then letters, digits and underscores.
    NamePlaceholder,
    /// `:` then letters, digits and underscores.
    ValuePlaceholder,
    /// Decimal digits (list indexes).
    Number,
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    Comma,
    Dot,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Plus,
    Minus,
    /// One character no token starts with.
    Unknown,
    /// The end of the text (always the last token).
    End,
}

/// A token: its kind and where its text lies in the expression (bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// The token's text in `source` (empty for the end).
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        source.get(self.start..self.end).unwrap_or("")
    }
}

/// The tokens of `source`, ending with one `End` token. The caller bounds
/// the text's length, which bounds the tokens: at most one per byte.
pub(crate) fn tokenize(source: &str) -> Vec<Token> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            at += 1;
            continue;
        }
        let (kind, end) = token_at(source, at, byte);
        tokens.push(Token { kind, start: at, end });
        at = end;
    }
    tokens.push(Token {
        kind: TokenKind::End,
        start: source.len(),
        end: source.len(),
    });
    tokens
}

/// The kind and end of the token that starts with `byte`, at `at` (a
/// character boundary, not whitespace). Every token takes at least one byte.
fn token_at(source: &str, at: usize, byte: u8) -> (TokenKind, usize) {
    let bytes = source.as_bytes();
    let next = bytes.get(at + 1).copied();
    match byte {
        b'a'..=b'z' | b'A'..=b'Z' => (TokenKind::Name, word_end(bytes, at + 1)),
        b'0'..=b'9' => (TokenKind::Number, digits_end(bytes, at + 1)),
        b'#' | b':' if next.is_some_and(is_word_byte) => {
            let kind = if byte == b'#' {
                TokenKind::NamePlaceholder
            } else {
                TokenKind::ValuePlaceholder
            };
            (kind, word_end(bytes, at + 1))
        }
        b'<' if next == Some(b'=') => (TokenKind::LessOrEqual, at + 2),
        b'<' if next == Some(b'>') => (TokenKind::NotEqual, at + 2),
        b'>' if next == Some(b'=') => (TokenKind::GreaterOrEqual, at + 2),
        _ => match single_byte_kind(byte) {
            Some(kind) => (kind, at + 1),
            None => (TokenKind::Unknown, char_end(source, at)),
        },
    }
}

fn single_byte_kind(byte: u8) -> Option<TokenKind> {
    Some(match byte {
        b'(' => TokenKind::LeftParen,
        b')' => TokenKind::RightParen,
        b'[' => TokenKind::LeftBracket,
        b']' => TokenKind::RightBracket,
        b',' => TokenKind::Comma,
        b'.' => TokenKind::Dot,
        b'=' => TokenKind::Equal,
        b'<' => TokenKind::Less,
        b'>' => TokenKind::Greater,
        b'+' => TokenKind::Plus,
        b'-' => TokenKind::Minus,
        _ => return None,
    })
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn word_end(bytes: &[u8], from: usize) -> usize {
    let length = bytes
        .get(from..)
        .map_or(0, |rest| rest.iter().take_while(|&&b| is_word_byte(b)).count());
    from + length
}

fn digits_end(bytes: &[u8], from: usize) -> usize {
    let length = bytes
        .get(from..)
        .map_or(0, |rest| rest.iter().take_while(|b| b.is_ascii_digit()).count());
    from + length
}

/// The end of the character that starts at `at` (one to four bytes).
fn char_end(source: &str, at: usize) -> usize {
    let width = source
        .get(at..)
        .and_then(|rest| rest.chars().next())
        .map_or(1, char::len_utf8);
    at + width
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenKind::*;

    fn kinds_and_texts(source: &str) -> Vec<(TokenKind, &str)> {
        tokenize(source).iter().map(|t| (t.kind, t.text(source))).collect()
    }

    #[test]
    fn names_placeholders_and_operators() {
        assert_eq!(
            kinds_and_texts("#pr.a_1[3] <= :v_2"),
            vec![
                (NamePlaceholder, "#pr"),
                (Dot, "."),
                (Name, "a_1"),
                (LeftBracket, "["),
                (Number, "3"),
                (RightBracket, "]"),
                (LessOrEqual, "<="),
                (ValuePlaceholder, ":v_2"),
                (End, ""),
            ]
        );
        assert_eq!(
            kinds_and_texts("a<>b>=c<d>e=f+g-h,(i)"),
            vec![
                (Name, "a"),
                (NotEqual, "<>"),
                (Name, "b"),
                (GreaterOrEqual, ">="),
                (Name, "c"),
                (Less, "<"),
                (Name, "d"),
                (Greater, ">"),
                (Name, "e"),
                (Equal, "="),
                (Name, "f"),
                (Plus, "+"),
                (Name, "g"),
                (Minus, "-"),
                (Name, "h"),
                (Comma, ","),
                (LeftParen, "("),
                (Name, "i"),
                (RightParen, ")"),
                (End, ""),
            ]
        );
    }

    #[test]
    fn characters_no_token_starts_with_stand_alone() {
        assert_eq!(
            kinds_and_texts("__x ü # :"),
            vec![
                (Unknown, "_"),
                (Unknown, "_"),
                (Name, "x"),
                (Unknown, "ü"),
                (Unknown, "#"),
                (Unknown, ":"),
                (End, ""),
            ]
        );
        assert_eq!(kinds_and_texts("4g"), vec![(Number, "4"), (Name, "g"), (End, "")]);
    }

    #[test]
    fn the_end_sits_after_trailing_whitespace() {
        let tokens = tokenize("a = \t\n");
        let end = tokens.last().copied();
        assert_eq!(
            end,
            Some(Token {
                kind: End,
                start: 6,
                end: 6
            })
        );
    }
}
