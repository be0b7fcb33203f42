/** The HDMI output's fixed id (pvm-core `HDMI_DISPLAY_ID`). */
export const HDMI_DISPLAY_ID = '00000000-0000-7000-8000-000000000001';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The live topic a display page shows, from its path: `/display/hdmi` is the HDMI output's
 * assignment, `/display/d/<display-id>` any display's (the Chromecast bridge uses it), and
 * `/display/<screen-id>` one screen wherever it is opened. Null for anything else.
 */
export function displayTopic(pathname: string): string | null {
  const parts = pathname.replace(/\/+$/, '').split('/').filter(Boolean);
  if (parts[0] !== 'display') return null;
  if (parts.length === 2 && parts[1] === 'hdmi') return `display/${HDMI_DISPLAY_ID}`;
  if (parts.length === 3 && parts[1] === 'd' && UUID.test(parts[2])) return `display/${parts[2].toLowerCase()}`;
  if (parts.length === 2 && UUID.test(parts[1])) return `screen/${parts[1].toLowerCase()}`;
  return null;
}
