//! The grammars of condition (filter, key condition), update and projection
//! expressions, from tokens to the trees of [`ast`](super::ast). Only syntax
//! is judged here, plus the bounds that keep the work small: the text's
//! length, the nesting depth, the operator count, a path's length.
//!
//! A syntax error names the token where the grammar broke and the text
//! around it, as DynamoDB does: from the token before to the token after
//! (`Syntax error; token: "/", near: "numx / :v"`; at the end, `token:
//! "<EOF>"` and the text from the last token on).
//!
//! Precedence, as the developer guide gives it, loosest first: `OR`, `AND`,
//! `NOT`, then comparisons, `BETWEEN`, `IN` and functions, then parentheses.

use super::ast::{ArithmeticOperator, ClauseKind, Comparator, Node, RawAction, RawClause, RawElement, RawPath};
use super::lexer::{Token, TokenKind, tokenize};
use super::{
    EXPRESSION_BYTES_MAX, EXPRESSION_NESTING_DEPTH_MAX, ExpressionKind, OPERATORS_MAX, PATH_ELEMENTS_MAX, invalid,
};
use crate::error::ApiError;

/// Words that are syntax in a condition, never an attribute's name.
const CONDITION_KEYWORDS: [&str; 5] = ["AND", "OR", "NOT", "BETWEEN", "IN"];
/// Words that open the clauses of an update expression.
const UPDATE_KEYWORDS: [&str; 4] = ["SET", "REMOVE", "ADD", "DELETE"];

/// Parses a condition, filter or key condition expression.
pub(crate) fn parse_condition(source: &str, kind: ExpressionKind) -> Result<Node, ApiError> {
    check_text(source, kind)?;
    let mut parser = Parser::new(source, kind, &CONDITION_KEYWORDS);
    let condition = parser.parse_or()?;
    parser.require_condition(&condition)?;
    parser.expect(TokenKind::End)?;
    Ok(condition)
}

/// Parses an update expression into its clauses, in the order written.
pub(crate) fn parse_update(source: &str) -> Result<Vec<RawClause>, ApiError> {
    check_text(source, ExpressionKind::Update)?;
    let mut parser = Parser::new(source, ExpressionKind::Update, &UPDATE_KEYWORDS);
    parser.parse_clauses()
}

/// Parses a projection expression into its paths, in the order written.
pub(crate) fn parse_projection(source: &str) -> Result<Vec<RawPath>, ApiError> {
    check_text(source, ExpressionKind::Projection)?;
    let mut parser = Parser::new(source, ExpressionKind::Projection, &[]);
    let mut paths = vec![parser.parse_target_path()?];
    while parser.peek().kind == TokenKind::Comma {
        parser.advance();
        paths.push(parser.parse_target_path()?);
    }
    parser.expect(TokenKind::End)?;
    Ok(paths)
}

/// Refuses a text that is too long or holds nothing.
fn check_text(source: &str, kind: ExpressionKind) -> Result<(), ApiError> {
    if source.len() > EXPRESSION_BYTES_MAX {
        return Err(invalid(
            kind,
            format!(
                "Expression size has exceeded the maximum allowed size; expression size: {}",
                source.len()
            ),
        ));
    }
    if source.trim_matches([' ', '\t', '\n', '\r']).is_empty() {
        return Err(invalid(kind, "The expression can not be empty;"));
    }
    Ok(())
}

fn comparator_of(kind: TokenKind) -> Option<Comparator> {
    Some(match kind {
        TokenKind::Equal => Comparator::Equal,
        TokenKind::NotEqual => Comparator::NotEqual,
        TokenKind::Less => Comparator::Less,
        TokenKind::LessOrEqual => Comparator::LessOrEqual,
        TokenKind::Greater => Comparator::Greater,
        TokenKind::GreaterOrEqual => Comparator::GreaterOrEqual,
        _ => return None,
    })
}

/// A recursive-descent parser over one expression's tokens.
struct Parser<'a> {
    source: &'a str,
    tokens: Vec<Token>,
    /// Index of the next token; never past the final `End`.
    position: usize,
    kind: ExpressionKind,
    /// Names that are syntax in this grammar, compared without case.
    keywords: &'static [&'static str],
    /// Parentheses, `NOT`s and calls open around the current token.
    depth: usize,
    operators: usize,
}

impl<'a> Parser<'a> {
    fn new(source: &'a str, kind: ExpressionKind, keywords: &'static [&'static str]) -> Parser<'a> {
        Parser {
            source,
            tokens: tokenize(source),
            position: 0,
            kind,
            keywords,
            depth: 0,
            operators: 0,
        }
    }

    fn token(&self, index: usize) -> Token {
        let end = Token {
            kind: TokenKind::End,
            start: self.source.len(),
            end: self.source.len(),
        };
        self.tokens.get(index).copied().unwrap_or(end)
    }

    fn peek(&self) -> Token {
        self.token(self.position)
    }

    fn peek_second(&self) -> Token {
        self.token(self.position + 1)
    }

    fn advance(&mut self) -> Token {
        let token = self.peek();
        if token.kind != TokenKind::End {
            self.position += 1;
        }
        token
    }

    fn text(&self, token: Token) -> &'a str {
        token.text(self.source)
    }

    fn is_keyword(&self, token: Token, word: &str) -> bool {
        token.kind == TokenKind::Name && self.text(token).eq_ignore_ascii_case(word)
    }

    fn is_any_keyword(&self, token: Token) -> bool {
        self.keywords.iter().any(|word| self.is_keyword(token, word))
    }

    /// A name that can begin a path: `#name`, or a name that is no keyword.
    fn starts_path(&self, token: Token) -> bool {
        match token.kind {
            TokenKind::NamePlaceholder => true,
            TokenKind::Name => !self.is_any_keyword(token),
            _ => false,
        }
    }

    fn expect(&mut self, kind: TokenKind) -> Result<Token, ApiError> {
        if self.peek().kind != kind {
            return Err(self.syntax_error());
        }
        Ok(self.advance())
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), ApiError> {
        if !self.is_keyword(self.peek(), word) {
            return Err(self.syntax_error());
        }
        self.advance();
        Ok(())
    }

    /// A syntax error at the next token.
    fn syntax_error(&self) -> ApiError {
        let index = self.position;
        let token = self.token(index);
        let shown = match token.kind {
            TokenKind::End => "<EOF>",
            _ => self.text(token),
        };
        let start = match index.checked_sub(1) {
            Some(previous) => self.token(previous).start,
            None => token.start,
        };
        let next = self.token(index + 1);
        let end = if token.kind != TokenKind::End && next.kind != TokenKind::End {
            next.end
        } else {
            token.end
        };
        let near = self.source.get(start..end).unwrap_or("");
        invalid(self.kind, format!("Syntax error; token: \"{shown}\", near: \"{near}\""))
    }

    /// Opens one level of nesting, refusing more than the bound.
    fn enter(&mut self) -> Result<(), ApiError> {
        self.depth += 1;
        if self.depth > EXPRESSION_NESTING_DEPTH_MAX {
            return Err(invalid(
                self.kind,
                format!(
                    "The expression has too many nested levels; nesting levels: {}, maximum: {EXPRESSION_NESTING_DEPTH_MAX}",
                    self.depth
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn count_operator(&mut self) -> Result<(), ApiError> {
        self.operators += 1;
        if self.operators > OPERATORS_MAX {
            return Err(invalid(
                self.kind,
                format!("The expression has too many operators or functions; maximum: {OPERATORS_MAX}"),
            ));
        }
        Ok(())
    }

    /// Refuses, at the next token, a node that is no condition where one
    /// must be: the grammar expected an operator after an operand.
    fn require_condition(&self, node: &Node) -> Result<(), ApiError> {
        if node.is_condition() {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    fn require_operand(&self, node: &Node) -> Result<(), ApiError> {
        if node.is_operand() {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    fn parse_or(&mut self) -> Result<Node, ApiError> {
        let first = self.parse_and()?;
        if !self.is_keyword(self.peek(), "OR") {
            return Ok(first);
        }
        self.require_condition(&first)?;
        let mut operands = vec![first];
        while self.is_keyword(self.peek(), "OR") {
            self.count_operator()?;
            self.advance();
            let next = self.parse_and()?;
            self.require_condition(&next)?;
            operands.push(next);
        }
        Ok(Node::Or(operands))
    }

    fn parse_and(&mut self) -> Result<Node, ApiError> {
        let first = self.parse_not()?;
        if !self.is_keyword(self.peek(), "AND") {
            return Ok(first);
        }
        self.require_condition(&first)?;
        let mut operands = vec![first];
        while self.is_keyword(self.peek(), "AND") {
            self.count_operator()?;
            self.advance();
            let next = self.parse_not()?;
            self.require_condition(&next)?;
            operands.push(next);
        }
        Ok(Node::And(operands))
    }

    fn parse_not(&mut self) -> Result<Node, ApiError> {
        if !self.is_keyword(self.peek(), "NOT") {
            return self.parse_comparison();
        }
        self.count_operator()?;
        self.enter()?;
        self.advance();
        let inner = self.parse_not()?;
        self.require_condition(&inner)?;
        self.leave();
        Ok(Node::Not(Box::new(inner)))
    }

    /// An operand and what follows it: a comparator, `BETWEEN` or `IN`; or a
    /// parenthesized condition or a function call standing alone.
    fn parse_comparison(&mut self) -> Result<Node, ApiError> {
        let left = self.parse_primary()?;
        let token = self.peek();
        if let Some(comparator) = comparator_of(token.kind) {
            self.require_operand(&left)?;
            self.count_operator()?;
            self.advance();
            let right = self.parse_operand()?;
            return Ok(Node::Compare {
                comparator,
                left: Box::new(left),
                right: Box::new(right),
            });
        }
        if self.is_keyword(token, "BETWEEN") {
            self.require_operand(&left)?;
            return self.parse_between(left);
        }
        if self.is_keyword(token, "IN") {
            self.require_operand(&left)?;
            return self.parse_in(left);
        }
        Ok(left)
    }

    fn parse_between(&mut self, value: Node) -> Result<Node, ApiError> {
        self.count_operator()?;
        self.advance();
        let low = self.parse_operand()?;
        self.expect_keyword("AND")?;
        let high = self.parse_operand()?;
        Ok(Node::Between {
            value: Box::new(value),
            low: Box::new(low),
            high: Box::new(high),
        })
    }

    fn parse_in(&mut self, value: Node) -> Result<Node, ApiError> {
        self.count_operator()?;
        self.advance();
        self.expect(TokenKind::LeftParen)?;
        let mut list = vec![self.parse_operand()?];
        while self.peek().kind == TokenKind::Comma {
            self.advance();
            list.push(self.parse_operand()?);
        }
        self.expect(TokenKind::RightParen)?;
        Ok(Node::In {
            value: Box::new(value),
            list,
        })
    }

    /// Where a condition or an operand may start: parentheses may hold either.
    fn parse_primary(&mut self) -> Result<Node, ApiError> {
        if self.peek().kind != TokenKind::LeftParen {
            return self.parse_atom(Parser::parse_operand);
        }
        self.enter()?;
        self.advance();
        let inner = self.parse_or()?;
        self.expect(TokenKind::RightParen)?;
        self.leave();
        Ok(Node::Parenthesized(Box::new(inner)))
    }

    /// Where only an operand may stand (after a comparator, in a list, as
    /// an argument).
    fn parse_operand(&mut self) -> Result<Node, ApiError> {
        if self.peek().kind != TokenKind::LeftParen {
            return self.parse_atom(Parser::parse_operand);
        }
        self.enter()?;
        self.advance();
        let inner = self.parse_operand()?;
        self.expect(TokenKind::RightParen)?;
        self.leave();
        Ok(Node::Parenthesized(Box::new(inner)))
    }

    /// A `:value`, a function call (its arguments read by `argument`) or a path.
    fn parse_atom(&mut self, argument: fn(&mut Parser<'a>) -> Result<Node, ApiError>) -> Result<Node, ApiError> {
        let token = self.peek();
        if token.kind == TokenKind::ValuePlaceholder {
            self.advance();
            return Ok(Node::Value(self.text(token).to_owned()));
        }
        let is_call = token.kind == TokenKind::Name && self.peek_second().kind == TokenKind::LeftParen;
        if is_call && !self.is_any_keyword(token) {
            return self.parse_call(argument);
        }
        if self.starts_path(token) {
            return Ok(Node::Path(self.parse_path()?));
        }
        Err(self.syntax_error())
    }

    fn parse_call(&mut self, argument: fn(&mut Parser<'a>) -> Result<Node, ApiError>) -> Result<Node, ApiError> {
        self.count_operator()?;
        self.enter()?;
        let name_token = self.advance();
        let name = self.text(name_token).to_owned();
        self.advance();
        let mut arguments = vec![argument(self)?];
        while self.peek().kind == TokenKind::Comma {
            self.advance();
            arguments.push(argument(self)?);
        }
        self.expect(TokenKind::RightParen)?;
        self.leave();
        Ok(Node::Call { name, arguments })
    }

    /// A path where the grammar wants one (an update's target, a projection).
    fn parse_target_path(&mut self) -> Result<RawPath, ApiError> {
        if !self.starts_path(self.peek()) {
            return Err(self.syntax_error());
        }
        self.parse_path()
    }

    /// A path; the next token is known to start one.
    fn parse_path(&mut self) -> Result<RawPath, ApiError> {
        let first = self.advance();
        let mut elements = vec![self.name_element(first)];
        loop {
            let element = match self.peek().kind {
                TokenKind::Dot => self.parse_member()?,
                TokenKind::LeftBracket => self.parse_index()?,
                _ => break,
            };
            elements.push(element);
            if elements.len() > PATH_ELEMENTS_MAX {
                return Err(invalid(
                    self.kind,
                    format!(
                        "Nesting Levels have exceeded supported limits; document path levels: {}, maximum: \
                         {PATH_ELEMENTS_MAX}",
                        elements.len()
                    ),
                ));
            }
        }
        Ok(RawPath { elements })
    }

    fn name_element(&self, token: Token) -> RawElement {
        let text = self.text(token).to_owned();
        match token.kind {
            TokenKind::NamePlaceholder => RawElement::Placeholder(text),
            _ => RawElement::Name(text),
        }
    }

    /// `.name` or `.#name`.
    fn parse_member(&mut self) -> Result<RawElement, ApiError> {
        self.advance();
        let token = self.peek();
        if !self.starts_path(token) {
            return Err(self.syntax_error());
        }
        self.advance();
        Ok(self.name_element(token))
    }

    /// `[n]`: digits that fit an index.
    fn parse_index(&mut self) -> Result<RawElement, ApiError> {
        self.advance();
        let token = self.peek();
        let index = match token.kind {
            TokenKind::Number => self.text(token).parse::<u32>().ok(),
            _ => None,
        };
        let Some(index) = index else {
            return Err(self.syntax_error());
        };
        self.advance();
        self.expect(TokenKind::RightBracket)?;
        Ok(RawElement::Index(index as usize))
    }

    /// Clauses until the end; each keyword opens a clause of actions
    /// separated by commas.
    fn parse_clauses(&mut self) -> Result<Vec<RawClause>, ApiError> {
        let mut clauses = Vec::new();
        loop {
            let token = self.peek();
            if token.kind == TokenKind::End && !clauses.is_empty() {
                return Ok(clauses);
            }
            let kind = match token.kind {
                TokenKind::Name => ClauseKind::from_keyword(self.text(token)),
                _ => None,
            };
            let Some(kind) = kind else {
                return Err(self.syntax_error());
            };
            self.advance();
            let mut actions = vec![self.parse_action(kind)?];
            while self.peek().kind == TokenKind::Comma {
                self.advance();
                actions.push(self.parse_action(kind)?);
            }
            clauses.push(RawClause { kind, actions });
        }
    }

    fn parse_action(&mut self, kind: ClauseKind) -> Result<RawAction, ApiError> {
        let path = self.parse_target_path()?;
        match kind {
            ClauseKind::Set => {
                self.expect(TokenKind::Equal)?;
                let value = self.parse_set_value()?;
                Ok(RawAction::Set { path, value })
            }
            ClauseKind::Remove => Ok(RawAction::Remove(path)),
            ClauseKind::Add | ClauseKind::Delete => {
                let value_token = self.expect(TokenKind::ValuePlaceholder)?;
                let value = self.text(value_token).to_owned();
                Ok(match kind {
                    ClauseKind::Add => RawAction::Add { path, value },
                    _ => RawAction::Delete { path, value },
                })
            }
        }
    }

    /// An operand, or two joined by one `+` or `-`.
    fn parse_set_value(&mut self) -> Result<Node, ApiError> {
        let left = self.parse_set_operand()?;
        let operator = match self.peek().kind {
            TokenKind::Plus => ArithmeticOperator::Plus,
            TokenKind::Minus => ArithmeticOperator::Minus,
            _ => return Ok(left),
        };
        self.count_operator()?;
        self.advance();
        let right = self.parse_set_operand()?;
        Ok(Node::Arithmetic {
            operator,
            left: Box::new(left),
            right: Box::new(right),
        })
    }

    fn parse_set_operand(&mut self) -> Result<Node, ApiError> {
        if self.peek().kind != TokenKind::LeftParen {
            return self.parse_atom(Parser::parse_set_operand);
        }
        self.enter()?;
        self.advance();
        let inner = self.parse_set_value()?;
        self.expect(TokenKind::RightParen)?;
        self.leave();
        Ok(Node::Parenthesized(Box::new(inner)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition_error(source: &str) -> String {
        match parse_condition(source, ExpressionKind::Condition) {
            Ok(node) => panic!("{source:?} parsed: {node:?}"),
            Err(error) => error.message,
        }
    }

    fn path(names: &[&str]) -> Node {
        Node::Path(RawPath {
            elements: names.iter().map(|name| RawElement::Name((*name).to_owned())).collect(),
        })
    }

    fn value(name: &str) -> Node {
        Node::Value(name.to_owned())
    }

    #[test]
    fn syntax_errors_name_the_token_and_the_text_around_it() {
        for (source, message) in [
            ("foo", r#"token: "<EOF>", near: "foo""#),
            ("attribute_not_exists(", r#"token: "<EOF>", near: "(""#),
            ("a = ", r#"token: "<EOF>", near: "= ""#),
            ("numx / :v", r#"token: "/", near: "numx / :v""#),
            ("a([1] = :v", r#"token: "[", near: "([1""#),
            ("expiresAt > now()", r#"token: ")", near: "()""#),
            ("pk = :v AND __typename = :t", r#"token: "_", near: "AND __""#),
            ("a = = :v", r#"token: "=", near: "= = :v""#),
            ("a BETWEEN :x OR :y", r#"token: "OR", near: ":x OR :y""#),
            ("a IN :x", r#"token: ":x", near: "IN :x""#),
            ("a in (b,c,)", r#"token: ")", near: ",)""#),
            ("a > between", r#"token: "between", near: "> between""#),
            ("a = :v AND b", r#"token: "<EOF>", near: "b""#),
            ("b[:a] > a", r#"token: ":a", near: "[:a]""#),
            ("a.:x = b", r#"token: ":x", near: ".:x =""#),
            ("size(a).b > a", r#"token: ".", near: ").b""#),
            ("(a = b", r#"token: "<EOF>", near: "b""#),
            ("a = b)", r#"token: ")", near: "b)""#),
            ("a[4.5] = b", r#"token: ".", near: "4.5""#),
        ] {
            assert_eq!(
                condition_error(source),
                format!("Invalid ConditionExpression: Syntax error; {message}"),
                "{source}"
            );
        }
    }

    #[test]
    fn precedence_is_or_then_and_then_not() {
        let parsed = parse_condition("NOT a = :a AND b = :b OR c = :c", ExpressionKind::Filter);
        let compare = |name: &str, placeholder: &str| Node::Compare {
            comparator: Comparator::Equal,
            left: Box::new(path(&[name])),
            right: Box::new(value(placeholder)),
        };
        let expected = Node::Or(vec![
            Node::And(vec![Node::Not(Box::new(compare("a", ":a"))), compare("b", ":b")]),
            compare("c", ":c"),
        ]);
        assert_eq!(parsed, Ok(expected));
    }

    #[test]
    fn operands_may_be_parenthesized_and_between_binds_its_and() {
        let parsed = parse_condition("(a)between(b.c)and(:c) AND x IN (y, :z)", ExpressionKind::Filter);
        let paren = |node: Node| Node::Parenthesized(Box::new(node));
        let expected = Node::And(vec![
            Node::Between {
                value: Box::new(paren(path(&["a"]))),
                low: Box::new(paren(path(&["b", "c"]))),
                high: Box::new(paren(value(":c"))),
            },
            Node::In {
                value: Box::new(path(&["x"])),
                list: vec![path(&["y"]), value(":z")],
            },
        ]);
        assert_eq!(parsed, Ok(expected));
    }

    #[test]
    fn paths_take_members_indexes_and_placeholders() {
        let parsed = parse_projection("#pr.FiveStar[1][0], a . b");
        let expected = vec![
            RawPath {
                elements: vec![
                    RawElement::Placeholder("#pr".into()),
                    RawElement::Name("FiveStar".into()),
                    RawElement::Index(1),
                    RawElement::Index(0),
                ],
            },
            RawPath {
                elements: vec![RawElement::Name("a".into()), RawElement::Name("b".into())],
            },
        ];
        assert_eq!(parsed, Ok(expected));
    }

    #[test]
    fn empty_and_oversized_texts_are_refused() {
        assert_eq!(
            condition_error(" \t"),
            "Invalid ConditionExpression: The expression can not be empty;"
        );
        let long = format!("a = :{}", "v".repeat(EXPRESSION_BYTES_MAX));
        assert_eq!(
            condition_error(&long),
            "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: 4101"
        );
        let exact = format!("a = :{}", "v".repeat(EXPRESSION_BYTES_MAX - 5));
        assert!(parse_condition(&exact, ExpressionKind::Condition).is_ok());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!(
            "{}a = :v{}",
            "(".repeat(EXPRESSION_NESTING_DEPTH_MAX),
            ")".repeat(EXPRESSION_NESTING_DEPTH_MAX)
        );
        assert!(parse_condition(&deep, ExpressionKind::Condition).is_ok());
        let deeper = format!("({deep})");
        assert_eq!(
            condition_error(&deeper),
            "Invalid ConditionExpression: The expression has too many nested levels; nesting levels: 65, maximum: 64"
        );
        let nots = format!("{}a = :v", "NOT ".repeat(EXPRESSION_NESTING_DEPTH_MAX + 1));
        assert!(condition_error(&nots).contains("too many nested levels"));
        let sizes = format!(
            "{}a{} > :v",
            "size(".repeat(EXPRESSION_NESTING_DEPTH_MAX + 1),
            ")".repeat(EXPRESSION_NESTING_DEPTH_MAX + 1)
        );
        assert!(condition_error(&sizes).contains("too many nested levels"));
    }

    #[test]
    fn operators_and_path_lengths_are_bounded() {
        let many = vec!["a = :v"; OPERATORS_MAX / 2 + 1].join(" OR ");
        assert_eq!(
            condition_error(&many),
            "Invalid ConditionExpression: The expression has too many operators or functions; maximum: 300"
        );
        let long_path = format!("attribute_exists(a{})", ".b".repeat(PATH_ELEMENTS_MAX));
        assert_eq!(
            condition_error(&long_path),
            "Invalid ConditionExpression: Nesting Levels have exceeded supported limits; document path levels: 33, \
             maximum: 32"
        );
        let longest = format!("attribute_exists(a{})", ".b".repeat(PATH_ELEMENTS_MAX - 1));
        assert!(parse_condition(&longest, ExpressionKind::Condition).is_ok());
    }

    #[test]
    fn update_clauses_and_actions() {
        let parsed = parse_update("set a = b + :c, d = if_not_exists(d, :e) REMOVE f[2] add g :h delete i :j");
        let Ok(clauses) = parsed else {
            panic!("{parsed:?}");
        };
        let kinds: Vec<ClauseKind> = clauses.iter().map(|clause| clause.kind).collect();
        assert_eq!(
            kinds,
            [ClauseKind::Set, ClauseKind::Remove, ClauseKind::Add, ClauseKind::Delete]
        );
        assert_eq!(
            clauses[0].actions[0],
            RawAction::Set {
                path: RawPath {
                    elements: vec![RawElement::Name("a".into())]
                },
                value: Node::Arithmetic {
                    operator: ArithmeticOperator::Plus,
                    left: Box::new(path(&["b"])),
                    right: Box::new(value(":c")),
                },
            }
        );
    }

    #[test]
    fn update_syntax_errors() {
        for (source, message) in [
            ("SET", r#"token: "<EOF>", near: "SET""#),
            ("whatever", r#"token: "whatever", near: "whatever""#),
            ("set a = b + c + d", r#"token: "+", near: "c + d""#),
            ("set a[1] = 1", r#"token: "1", near: "= 1""#),
            ("set a = set", r#"token: "set", near: "= set""#),
            ("remove a b", r#"token: "b", near: "a b""#),
            ("add a b", r#"token: "b", near: "a b""#),
            ("set :a = b", r#"token: ":a", near: "set :a =""#),
            ("set a = (b.c).d + e", r#"token: ".", near: ").d""#),
            ("set (a = b)", r#"token: "(", near: "set (a""#),
            ("set a = b,", r#"token: "<EOF>", near: ",""#),
        ] {
            assert_eq!(
                parse_update(source).map_err(|e| e.message),
                Err(format!("Invalid UpdateExpression: Syntax error; {message}")),
                "{source}"
            );
        }
    }
}
