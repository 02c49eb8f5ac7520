import { ApiError } from './errors.js';

/**
 * The SOQL subset the emulator understands: SELECT fields | COUNT() FROM object [WHERE …]
 * [ORDER BY …] [LIMIT n] [OFFSET n]. Names are kept as written, with their position, so the
 * evaluator can point at an unknown field the way Salesforce's error messages do.
 */

export type Literal =
  | { type: 'string'; value: string }
  | { type: 'number'; value: number }
  | { type: 'boolean'; value: boolean }
  | { type: 'null' }
  | { type: 'date'; value: string }
  | { type: 'datetime'; value: number; text: string };

export interface NameRef {
  name: string;
  pos: number;
}

export type Condition =
  | { kind: 'compare'; field: NameRef; op: '=' | '!=' | '<' | '<=' | '>' | '>='; value: Literal; valuePos: number }
  | { kind: 'in'; field: NameRef; negated: boolean; values: Literal[]; valuePos: number }
  | { kind: 'like'; field: NameRef; pattern: string; valuePos: number };

export type Expr =
  | { kind: 'and' | 'or'; operands: Expr[] }
  | { kind: 'not'; operand: Expr }
  | Condition;

export interface OrderItem {
  field: NameRef;
  descending: boolean;
  nullsFirst: boolean;
}

export interface SoqlQuery {
  select: { kind: 'count' } | { kind: 'fields'; fields: NameRef[] };
  from: NameRef;
  where?: Expr;
  orderBy: OrderItem[];
  limit?: number;
  offset?: number;
}

type TokenKind = 'ident' | 'string' | 'number' | 'date' | 'datetime' | 'op' | 'eof';
interface Token {
  kind: TokenKind;
  text: string;
  value?: string;
  pos: number;
}

/** Salesforce's query error text: the query line, a caret under the culprit, its row and column. */
export function soqlError(soql: string, pos: number, errorCode: string, message: string): ApiError {
  const before = soql.slice(0, pos).split('\n');
  const row = before.length;
  const column = (before[before.length - 1] ?? '').length + 1;
  const line = soql.split('\n')[row - 1] ?? '';
  return new ApiError(400, errorCode, `\n${line}\n${' '.repeat(column - 1)}^\nERROR at Row:${row}:Column:${column}\n${message}`);
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', '"': '"', "'": "'", '\\': '\\', _: '\\_', '%': '\\%' };
const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})/;
const DATE = /^\d{4}-\d{2}-\d{2}/;
const NUMBER = /^[+-]?(\d+(\.\d+)?|\.\d+)/;
const IDENT = /^[A-Za-z_][A-Za-z0-9_.]*/;
const OPERATOR = /^(!=|<>|<=|>=|=|<|>|\(|\)|,)/;

function tokenize(soql: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  while (pos < soql.length) {
    const rest = soql.slice(pos);
    const space = /^\s+/.exec(rest);
    if (space) { pos += space[0].length; continue; }
    if (rest.startsWith("'")) {
      let value = '';
      let i = 1;
      for (; i < rest.length && rest.charAt(i) !== "'"; i++) {
        if (rest.charAt(i) !== '\\') { value += rest.charAt(i); continue; }
        const escaped = ESCAPES[rest.charAt(i + 1)];
        if (escaped === undefined) throw soqlError(soql, pos + i, 'MALFORMED_QUERY', `Invalid string literal '${rest.slice(0, i + 2)}'. Illegal character sequence '\\${rest.charAt(i + 1)}' in string literal.`);
        value += escaped;
        i++;
      }
      if (i >= rest.length) throw soqlError(soql, pos, 'MALFORMED_QUERY', `unexpected token: ${rest}`);
      tokens.push({ kind: 'string', text: rest.slice(0, i + 1), value, pos });
      pos += i + 1;
      continue;
    }
    const match: [TokenKind, RegExpExecArray | null][] = [
      ['datetime', DATETIME.exec(rest)], ['date', DATE.exec(rest)], ['number', NUMBER.exec(rest)],
      ['ident', IDENT.exec(rest)], ['op', OPERATOR.exec(rest)],
    ];
    const found = match.find(([, m]) => m !== null);
    if (!found || !found[1]) throw soqlError(soql, pos, 'MALFORMED_QUERY', `unexpected token: '${rest.charAt(0)}'`);
    tokens.push({ kind: found[0], text: found[1][0], pos });
    pos += found[1][0].length;
  }
  tokens.push({ kind: 'eof', text: '<EOF>', pos: soql.length });
  return tokens;
}

class Parser {
  private index = 0;
  private readonly tokens: Token[];

  constructor(private readonly soql: string) {
    this.tokens = tokenize(soql);
  }

  private peek(): Token {
    return this.tokens[Math.min(this.index, this.tokens.length - 1)] as Token;
  }

  private next(): Token {
    const token = this.peek();
    this.index += 1;
    return token;
  }

  private unexpected(token: Token): ApiError {
    return soqlError(this.soql, token.pos, 'MALFORMED_QUERY', `unexpected token: '${token.text}'`);
  }

  private isKeyword(word: string): boolean {
    const token = this.peek();
    return token.kind === 'ident' && token.text.toUpperCase() === word;
  }

  private expectKeyword(word: string): void {
    if (!this.isKeyword(word)) throw this.unexpected(this.peek());
    this.index += 1;
  }

  private acceptKeyword(word: string): boolean {
    if (!this.isKeyword(word)) return false;
    this.index += 1;
    return true;
  }

  private expectOp(op: string): Token {
    const token = this.next();
    if (token.kind !== 'op' || token.text !== op) throw this.unexpected(token);
    return token;
  }

  private name(): NameRef {
    const token = this.next();
    if (token.kind !== 'ident') throw this.unexpected(token);
    return { name: token.text, pos: token.pos };
  }

  private integer(): number {
    const token = this.next();
    if (token.kind !== 'number' || !/^\d+$/.test(token.text)) throw this.unexpected(token);
    return Number(token.text);
  }

  parse(): SoqlQuery {
    this.expectKeyword('SELECT');
    let select: SoqlQuery['select'];
    if (this.isKeyword('COUNT') && this.tokens[this.index + 1]?.text === '(') {
      this.index += 1;
      this.expectOp('(');
      this.expectOp(')');
      select = { kind: 'count' };
    } else {
      const fields = [this.name()];
      while (this.peek().text === ',') { this.index += 1; fields.push(this.name()); }
      select = { kind: 'fields', fields };
    }
    this.expectKeyword('FROM');
    const query: SoqlQuery = { select, from: this.name(), orderBy: [] };
    if (this.acceptKeyword('WHERE')) query.where = this.expression();
    if (this.acceptKeyword('ORDER')) {
      this.expectKeyword('BY');
      query.orderBy.push(this.orderItem());
      while (this.peek().text === ',') { this.index += 1; query.orderBy.push(this.orderItem()); }
    }
    if (this.acceptKeyword('LIMIT')) query.limit = this.integer();
    if (this.acceptKeyword('OFFSET')) query.offset = this.integer();
    if (this.peek().kind !== 'eof') throw this.unexpected(this.peek());
    return query;
  }

  private orderItem(): OrderItem {
    const field = this.name();
    const descending = this.acceptKeyword('DESC');
    if (!descending) this.acceptKeyword('ASC');
    let nullsFirst = !descending;
    if (this.acceptKeyword('NULLS')) {
      if (this.acceptKeyword('FIRST')) nullsFirst = true;
      else { this.expectKeyword('LAST'); nullsFirst = false; }
    }
    return { field, descending, nullsFirst };
  }

  /** SOQL rejects AND and OR mixed at one level without parentheses, so each level has one connective. */
  private expression(): Expr {
    const first = this.unary();
    const connective = this.isKeyword('AND') ? 'and' : this.isKeyword('OR') ? 'or' : undefined;
    if (!connective) return first;
    const operands = [first];
    while (this.acceptKeyword(connective.toUpperCase())) operands.push(this.unary());
    const other = connective === 'and' ? 'OR' : 'AND';
    if (this.isKeyword(other)) throw this.unexpected(this.peek());
    return { kind: connective, operands };
  }

  private unary(): Expr {
    if (this.acceptKeyword('NOT')) return { kind: 'not', operand: this.unary() };
    if (this.peek().text === '(') {
      this.index += 1;
      const inner = this.expression();
      this.expectOp(')');
      return inner;
    }
    return this.condition();
  }

  private condition(): Condition {
    const field = this.name();
    const negated = this.acceptKeyword('NOT');
    if (negated || this.isKeyword('IN')) {
      this.expectKeyword('IN');
      const open = this.expectOp('(');
      const values = [this.literal()];
      while (this.peek().text === ',') { this.index += 1; values.push(this.literal()); }
      this.expectOp(')');
      return { kind: 'in', field, negated, values, valuePos: open.pos };
    }
    if (this.acceptKeyword('LIKE')) {
      const token = this.next();
      if (token.kind !== 'string') throw this.unexpected(token);
      return { kind: 'like', field, pattern: token.value ?? '', valuePos: token.pos };
    }
    const opToken = this.next();
    const ops = ['=', '!=', '<>', '<', '<=', '>', '>='];
    if (opToken.kind !== 'op' || !ops.includes(opToken.text)) throw this.unexpected(opToken);
    const op = (opToken.text === '<>' ? '!=' : opToken.text) as Extract<Condition, { kind: 'compare' }>['op'];
    const valuePos = this.peek().pos;
    return { kind: 'compare', field, op, value: this.literal(), valuePos };
  }

  private literal(): Literal {
    const token = this.next();
    switch (token.kind) {
      case 'string':
        return { type: 'string', value: (token.value ?? '').replace(/\\([_%])/g, '$1') };
      case 'number':
        return { type: 'number', value: Number(token.text) };
      case 'date':
        return { type: 'date', value: token.text };
      case 'datetime':
        return { type: 'datetime', value: Date.parse(token.text.replace(/([+-]\d{2})(\d{2})$/, '$1:$2')), text: token.text };
      case 'ident': {
        const word = token.text.toLowerCase();
        if (word === 'null') return { type: 'null' };
        if (word === 'true' || word === 'false') return { type: 'boolean', value: word === 'true' };
        throw this.unexpected(token);
      }
      default:
        throw this.unexpected(token);
    }
  }
}

export function parseSoql(soql: string): SoqlQuery {
  return new Parser(soql).parse();
}
