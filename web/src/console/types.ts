// JSON shapes of the node's tournament data that the console reads.
export interface Level {
  type: 'level';
  small_blind: number;
  big_blind: number;
  ante: number;
  ante_kind: 'none' | 'classic' | 'big_blind';
  duration_secs: number;
}
export interface Break {
  type: 'break';
  duration_secs: number;
  colour_up: string | null;
}
export type Item = Level | Break;
export interface Structure {
  name: string;
  items: Item[];
}
export interface Entry {
  id: string;
  player_id: string;
  player_name: string;
  number: number;
  is_reentry: boolean;
  rebuys: number;
  addon: boolean;
  status: 'active' | 'busted';
  place: number | null;
  chips: number | null;
  bounty: number;
}
export interface Table {
  id: string;
  number: number;
  seat_count: number;
  occupants: Record<string, string>;
  locked: number[];
  button: number | null;
}
export interface ClockView {
  status: 'not_started' | 'running' | 'paused' | 'finished';
  item_index: number;
  level_number: number | null;
  on_break: boolean;
  remaining_ms: number;
}
export interface TournamentDetail {
  tournament: {
    id: string;
    status: string;
    config: Record<string, unknown> & { name: string; buy_in: number; fee: number; starting_stack: number };
    structure: Structure;
    entries: Record<string, Entry>;
    floor: { tables: Table[]; break_order: string[] };
    hand_for_hand: boolean;
    bust_history: unknown[];
    bust_redo: unknown[];
    seating_history: unknown[];
    seating_redo: unknown[];
    deal: unknown | null;
  };
  clock: ClockView;
  server_time_ms: number;
  late_registration_closed: string | null;
  stats: { entries: number; players_left: number; chips_in_play: number; average_stack: number; reentries: number; rebuys: number; addons: number };
  prize_pool: {
    entries: number;
    reentries: number;
    rebuys: number;
    addons: number;
    from_entries: number;
    from_rebuys: number;
    from_addons: number;
    bounties: number;
    fees: number;
    collected: number;
    guarantee: number;
    overlay: number;
    total: number;
  };
  payouts: number[];
  results: { place: number; prize: number; entry_id: string | null; player_name: string | null; paid: number | null; bounties_won: number }[];
}
export interface TournamentSummary {
  id: string;
  name: string;
  status: string;
  entries: number;
  players_left: number;
  clock: ClockView;
}
