//! The syntax trees the parser builds: what the text says, with placeholders
//! still unresolved and nothing checked beyond the grammar. The checks and
//! the resolution into [`Condition`](super::Condition),
//! [`Update`](super::Update) and the rest work on these.
//!
//! Chains of `AND` and of `OR` are kept flat (one node, many operands), so a
//! tree is only as deep as its parentheses, `NOT`s and function calls, which
//! the parser bounds by [`EXPRESSION_NESTING_DEPTH_MAX`](super::EXPRESSION_NESTING_DEPTH_MAX).

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparator {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparator {
    /// The operator as the expression writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparator::Equal => "=",
            Comparator::NotEqual => "<>",
            Comparator::Less => "<",
            Comparator::LessOrEqual => "<=",
            Comparator::Greater => ">",
            Comparator::GreaterOrEqual => ">=",
        }
    }

    /// Whether it orders its operands (only strings, numbers and binaries
    /// have an order).
    pub fn is_ordering(self) -> bool {
        !matches!(self, Comparator::Equal | Comparator::NotEqual)
    }

    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub fn swapped(self) -> Comparator {
        match self {
            Comparator::Less => Comparator::Greater,
            Comparator::LessOrEqual => Comparator::GreaterOrEqual,
            Comparator::Greater => Comparator::Less,
            Comparator::GreaterOrEqual => Comparator::LessOrEqual,
            other => other,
        }
    }
}

/// One element of a document path as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RawElement {
    /// A name written out.
    Name(String),
    /// `#name`, to look up in the expression attribute names.
    Placeholder(String),
    /// `[n]`.
    Index(usize),
}

/// A document path as written: a name or `#name`, then `.name`, `.#name`
/// and `[n]` elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawPath {
    pub elements: Vec<RawElement>,
}

/// `+` or `-` in a `SET` action's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArithmeticOperator {
    Plus,
    Minus,
}

impl ArithmeticOperator {
    pub fn symbol(self) -> &'static str {
        match self {
            ArithmeticOperator::Plus => "+",
            ArithmeticOperator::Minus => "-",
        }
    }
}

/// A node of a condition, or of a `SET` action's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    Path(RawPath),
    /// `:value`, to look up in the expression attribute values.
    Value(String),
    Call {
        name: String,
        arguments: Vec<Node>,
    },
    Parenthesized(Box<Node>),
    Compare {
        comparator: Comparator,
        left: Box<Node>,
        right: Box<Node>,
    },
    Between {
        value: Box<Node>,
        low: Box<Node>,
        high: Box<Node>,
    },
    In {
        value: Box<Node>,
        list: Vec<Node>,
    },
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    /// Only in a `SET` action's value.
    Arithmetic {
        operator: ArithmeticOperator,
        left: Box<Node>,
        right: Box<Node>,
    },
}

impl Node {
    /// Whether the node can stand where an operand is expected (a function
    /// call counts; whether it may is checked later).
    pub fn is_operand(&self) -> bool {
        match self {
            Node::Path(_) | Node::Value(_) | Node::Call { .. } | Node::Arithmetic { .. } => true,
            Node::Parenthesized(inner) => inner.is_operand(),
            _ => false,
        }
    }

    /// Whether the node can stand where a condition is expected.
    pub fn is_condition(&self) -> bool {
        match self {
            Node::Path(_) | Node::Value(_) | Node::Arithmetic { .. } => false,
            Node::Parenthesized(inner) => inner.is_condition(),
            _ => true,
        }
    }
}

/// The clauses of an update expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClauseKind {
    Set,
    Remove,
    Add,
    Delete,
}

impl ClauseKind {
    pub fn keyword(self) -> &'static str {
        match self {
            ClauseKind::Set => "SET",
            ClauseKind::Remove => "REMOVE",
            ClauseKind::Add => "ADD",
            ClauseKind::Delete => "DELETE",
        }
    }

    pub fn from_keyword(word: &str) -> Option<ClauseKind> {
        [ClauseKind::Set, ClauseKind::Remove, ClauseKind::Add, ClauseKind::Delete]
            .into_iter()
            .find(|kind| kind.keyword().eq_ignore_ascii_case(word))
    }
}

/// One action of an update expression as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RawAction {
    Set { path: RawPath, value: Node },
    Remove(RawPath),
    Add { path: RawPath, value: String },
    Delete { path: RawPath, value: String },
}

impl RawAction {
    /// The path the action writes.
    pub fn target(&self) -> &RawPath {
        match self {
            RawAction::Set { path, .. } | RawAction::Add { path, .. } | RawAction::Delete { path, .. } => path,
            RawAction::Remove(path) => path,
        }
    }
}

/// A clause: its keyword and its actions, in the order written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawClause {
    pub kind: ClauseKind,
    pub actions: Vec<RawAction>,
}
