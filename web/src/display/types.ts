// The node's `pvm_core::views` types as JSON.
import type { ClockSegment } from '../lib/clock';

export interface Brand {
  venue_name: string;
  background: string;
  foreground: string;
  accent: string;
  logo: string | null;
}

export interface ClockScreen {
  type: 'clock';
  tournament_id: string;
  tournament_name: string;
  status: string;
  running: boolean;
  remaining_ms: number;
  time_left: string;
  segments: ClockSegment[];
  on_break: boolean;
  level_title: string;
  blinds: string;
  next: string;
  next_break: string;
  hand_for_hand: boolean;
  players_left: string;
  entries: string;
  reentries: string;
  rebuys: string;
  addons: string;
  average_stack: string;
  average_stack_bb: string;
  chips_in_play: string;
  prize_pool: string;
  overlay: string;
  payouts: [string, string][];
  registration: string;
}

export type ScreenContent =
  | ClockScreen
  | { type: 'seating_draw'; tournament_name: string; lines: { name: string; table: string; seat: string }[] }
  | {
      type: 'payouts';
      tournament_name: string;
      prize_pool: string;
      places_paid: string;
      lines: { place: string; amount: string; name: string }[];
    }
  | {
      type: 'waiting_list';
      games: {
        game: string;
        interest_only: boolean;
        lines: { position: number; name: string; called: boolean }[];
        estimated_wait: string;
      }[];
    }
  | { type: 'tables_board'; lines: { game: string; tables: number; open_seats: number; waiting: number }[] }
  | {
      type: 'setup';
      title: string;
      console_url: string;
      other_urls: string[];
      qr_payload: string;
      setup_code: string | null;
      instructions: string;
      /** First-boot mistakes in pvm.toml (absent from nodes older than this field). */
      notices_title?: string;
      notices?: string[];
    }
  | { type: 'rotation'; interval_secs: number; items: ScreenContent[] }
  | { type: 'message'; title: string; text: string };

export interface DisplayView {
  display_id: string | null;
  screen_id: string | null;
  server_time_ms: number;
  brand: Brand;
  rotation: number;
  overscan_percent: number;
  announcements: { text: string; style: string }[];
  content: ScreenContent;
}
