//! The SQL vocabulary the tokenizer recognises: keywords by role, and function names.
//!
//! This is the language's vocabulary (what a SQL parser knows), not a list of attack
//! strings: a word here only matters when the classifier finds it in a SQL position.

/// A keyword, grouped by the role it plays in the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    // Statements.
    Select,
    Insert,
    Update,
    Delete,
    Drop,
    Create,
    Alter,
    Truncate,
    Exec,
    Declare,
    Shutdown,
    Waitfor,
    Set,
    Replace,
    Begin,
    Goto,
    Call,
    Do,
    Load,
    Handler,
    // Set operations.
    Union,
    // Clauses and their helpers.
    All,
    Distinct,
    From,
    Where,
    Having,
    Group,
    Order,
    By,
    Limit,
    Offset,
    Into,
    Values,
    Table,
    Database,
    Procedure,
    Outfile,
    As,
    Join,
    On,
    Delay,
    Time,
    Top,
    // Logic.
    And,
    Or,
    Xor,
    Not,
    // Word operators.
    Like,
    In,
    Is,
    Between,
    Div,
    Collate,
    Escape,
    // Literals.
    Literal,
    // CASE expression.
    Case,
    When,
    Then,
    Else,
    End,
    Exists,
    If,
    Binary,
    For,
    Using,
}

impl Kw {
    /// Fingerprint letter: `E` statement, `U` set operation, `&` logic, `o` word
    /// operator, `1` literal, `k` anything else.
    pub(crate) fn letter(self) -> char {
        match self.role() {
            Role::Statement => 'E',
            Role::Union => 'U',
            Role::Logic => '&',
            Role::WordOp => 'o',
            Role::Literal => '1',
            Role::Clause => 'k',
        }
    }

    pub(crate) fn role(self) -> Role {
        use Kw::*;
        match self {
            Select | Insert | Update | Delete | Drop | Create | Alter | Truncate | Exec
            | Declare | Shutdown | Waitfor | Set | Replace | Begin | Goto | Call | Do | Load
            | Handler => Role::Statement,
            Union => Role::Union,
            And | Or | Xor => Role::Logic,
            Like | In | Is | Between | Div | Collate | Escape => Role::WordOp,
            Literal => Role::Literal,
            _ => Role::Clause,
        }
    }
}

/// The grammatical role of a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Statement,
    Union,
    Logic,
    WordOp,
    Literal,
    Clause,
}

/// How a function name is classed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FuncClass {
    /// A common SQL function (string, math, conversion, metadata).
    Known,
    /// A function whose only plausible use in user input is an attack: delays
    /// (time-based blind injection), file and network access, error-based extraction.
    Dangerous,
}

/// Longest keyword or function name in the tables below.
const MAX_NAME_LEN: usize = 32;

/// `w` in ASCII lowercase in a stack buffer, or `None` when too long to be in a table.
fn lower(w: &[u8]) -> Option<([u8; MAX_NAME_LEN], usize)> {
    if w.len() > MAX_NAME_LEN {
        return None;
    }
    let mut buf = [0u8; MAX_NAME_LEN];
    for (d, s) in buf.iter_mut().zip(w) {
        *d = s.to_ascii_lowercase();
    }
    Some((buf, w.len()))
}

pub(crate) fn lookup_keyword(w: &[u8]) -> Option<Kw> {
    use Kw::*;
    let (buf, len) = lower(w)?;
    Some(match buf.get(..len)? {
        b"select" => Select,
        b"insert" => Insert,
        b"update" => Update,
        b"delete" => Delete,
        b"drop" => Drop,
        b"create" => Create,
        b"alter" => Alter,
        b"truncate" => Truncate,
        b"exec" => Exec,
        b"execute" => Exec,
        b"declare" => Declare,
        b"shutdown" => Shutdown,
        b"waitfor" => Waitfor,
        b"set" => Set,
        b"replace" => Replace,
        b"begin" => Begin,
        b"goto" => Goto,
        b"call" => Call,
        b"do" => Do,
        b"load" => Load,
        b"handler" => Handler,
        b"for" => For,
        b"using" => Using,
        b"union" => Union,
        b"intersect" => Union,
        b"except" => Union,
        b"all" => All,
        b"distinct" => Distinct,
        b"distinctrow" => Distinct,
        b"from" => From,
        b"where" => Where,
        b"having" => Having,
        b"group" => Group,
        b"order" => Order,
        b"by" => By,
        b"limit" => Limit,
        b"offset" => Offset,
        b"into" => Into,
        b"values" => Values,
        b"table" => Table,
        b"database" => Database,
        b"schema" => Database,
        b"procedure" => Procedure,
        b"outfile" => Outfile,
        b"dumpfile" => Outfile,
        b"as" => As,
        b"join" => Join,
        b"on" => On,
        b"delay" => Delay,
        b"time" => Time,
        b"top" => Top,
        b"and" => And,
        b"or" => Or,
        b"xor" => Xor,
        b"not" => Not,
        b"like" => Like,
        b"rlike" => Like,
        b"ilike" => Like,
        b"regexp" => Like,
        b"sounds" => Like,
        b"in" => In,
        b"is" => Is,
        b"between" => Between,
        b"div" => Div,
        b"mod" => Div,
        b"collate" => Collate,
        b"escape" => Escape,
        b"true" => Literal,
        b"false" => Literal,
        b"null" => Literal,
        b"case" => Case,
        b"when" => When,
        b"then" => Then,
        b"else" => Else,
        b"end" => End,
        b"exists" => Exists,
        b"if" => If,
        b"while" => If,
        b"binary" => Binary,
        _ => return None,
    })
}

pub(crate) fn lookup_function(w: &[u8]) -> Option<FuncClass> {
    let (buf, len) = lower(w)?;
    match buf.get(..len)? {
        // Delays (time-based blind injection), file and network access, error-based
        // extraction, command execution.
        b"sleep"
        | b"benchmark"
        | b"pg_sleep"
        | b"load_file"
        | b"extractvalue"
        | b"updatexml"
        | b"xp_cmdshell"
        | b"dbms_pipe.receive_message"
        | b"dbms_lock.sleep"
        | b"utl_inaddr.get_host_name"
        | b"utl_inaddr.get_host_address"
        | b"utl_http.request"
        | b"dbms_utility.sqlid_to_sqlhash"
        | b"dbms_xmlgen.getxml"
        | b"ctxsys.drithsx.sn"
        | b"pg_read_file"
        | b"pg_ls_dir"
        | b"lo_import"
        | b"openrowset"
        | b"opendatasource"
        | b"randomblob"
        | b"load_extension"
        | b"sys_eval"
        | b"sys_exec"
        | b"get_lock"
        | b"master_pos_wait" => Some(FuncClass::Dangerous),
        // String, math, conversion, metadata and aggregate functions.
        b"ascii"
        | b"pi"
        | b"char"
        | b"chr"
        | b"concat"
        | b"concat_ws"
        | b"group_concat"
        | b"string_agg"
        | b"substring"
        | b"substr"
        | b"mid"
        | b"left"
        | b"right"
        | b"length"
        | b"len"
        | b"char_length"
        | b"lower"
        | b"upper"
        | b"lcase"
        | b"ucase"
        | b"trim"
        | b"ltrim"
        | b"rtrim"
        | b"replace"
        | b"reverse"
        | b"hex"
        | b"unhex"
        | b"md5"
        | b"sha1"
        | b"sha2"
        | b"ord"
        | b"bin"
        | b"conv"
        | b"cast"
        | b"convert"
        | b"count"
        | b"sum"
        | b"min"
        | b"max"
        | b"avg"
        | b"abs"
        | b"floor"
        | b"ceil"
        | b"ceiling"
        | b"round"
        | b"rand"
        | b"random"
        | b"exp"
        | b"pow"
        | b"power"
        | b"sqrt"
        | b"sin"
        | b"cos"
        | b"tan"
        | b"log"
        | b"ln"
        | b"if"
        | b"ifnull"
        | b"isnull"
        | b"nullif"
        | b"coalesce"
        | b"nvl"
        | b"iif"
        | b"elt"
        | b"field"
        | b"make_set"
        | b"instr"
        | b"locate"
        | b"position"
        | b"version"
        | b"database"
        | b"schema"
        | b"user"
        | b"current_user"
        | b"system_user"
        | b"session_user"
        | b"user_name"
        | b"db_name"
        | b"host_name"
        | b"suser_sname"
        | b"serverproperty"
        | b"object_id"
        | b"objectproperty"
        | b"now"
        | b"sysdate"
        | b"curdate"
        | b"utc_date"
        | b"utc_time"
        | b"row_count"
        | b"found_rows"
        | b"last_insert_id"
        | b"connection_id"
        | b"json_keys"
        | b"json_extract"
        | b"xmltype"
        | b"xmlagg"
        | b"xmlelement"
        | b"array_agg"
        | b"array_to_json"
        | b"sqlite_version"
        | b"typeof"
        | b"glob"
        | b"unicode"
        | b"quote"
        | b"compress"
        | b"uncompress"
        | b"aes_encrypt"
        | b"des_encrypt"
        | b"encode"
        | b"decode"
        | b"bit_length"
        | b"octet_length"
        | b"space"
        | b"repeat"
        | b"lpad"
        | b"rpad"
        | b"insert"
        | b"export_set"
        | b"name_const"
        | b"row"
        | b"geometrycollection"
        | b"polygon"
        | b"multipoint"
        | b"linestring"
        | b"gtid_subset"
        | b"exists"
        | b"binary"
        | b"values"
        | b"crc32"
        | b"strcmp"
        | b"soundex"
        | b"to_char"
        | b"to_number"
        | b"cot"
        | b"current_database"
        | b"current_schema"
        | b"pg_client_encoding"
        | b"inet_server_addr"
        | b"banner"
        | b"rownum"
        | b"waitfor"
        | b"filetoclob"
        | b"filetoblob"
        | b"dcount"
        | b"last"
        | b"first"
        | b"datalength"
        | b"is_srvrolemember"
        | b"has_dbaccess"
        | b"quotename"
        | b"nchar"
        | b"unistr"
        | b"utl_raw.cast_to_varchar2"
        | b"sys.fn_varbintohexstr"
        | b"fn_varbintohexstr" => Some(FuncClass::Known),
        _ => None,
    }
}
