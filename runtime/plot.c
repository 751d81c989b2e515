/* plot.c: Blocks' Plot extension as a live HTML page (#11).
**
** Blocks (blocks-extras) pushed its figures to a Bokeh server; kiln writes two
** files instead, so that nothing but a browser is needed to watch a run, over
** no network:
**
**   PAGE            the page: HTML, the charting library (Debian's
**                   libjs-chart.js, Chart.js 3) inlined, and a script that
**                   draws one chart per figure;
**   STEM.data.js    the data: one call kiln_plot_data({...JSON...}) holding
**                   the layout and every point so far (STEM is PAGE less a
**                   final ".html" or ".htm"; PAGE.data.js for other names).
**
** The page re-reads the data every second by inserting a fresh <script src>
** (fetch and XMLHttpRequest are refused on file:// pages; a script tag is
** not), and redraws when the data's version changed. The data file is
** rewritten whole, to a temporary file renamed over it, so the page never
** reads half a file. Rejected: appending points (the page would have to
** parse a growing log, and a reader could see a torn line); a page that
** embeds its data (a browser cannot reload part of a page).
**
** Points. Like Blocks' Plot.do, each report reads the current row of the log
** and appends (iterations_done, value) to every channel present in it; a
** channel absent from the row gets no point, a text record is skipped, a
** boolean plots as 0 or 1. Two reports at the same iteration (after_batch
** and after_epoch) give one point, the later value. A channel may appear in
** several figures: it is one series, drawn in each.
**
** Names are data. Channel and document names reach the page only as JSON
** strings in the data file, escaped to ASCII (every '<', '>', '&', quote,
** control and non-ASCII character as \uXXXX), and the page puts them in the
** DOM as text (textContent, Chart.js's canvas labels), never as markup; the
** document name also appears in the page's <title> and heading, HTML-escaped.
** Values are written with the fewest digits (15 to 17) that read back as the
** same double; NaN and infinities, which JSON lacks, as the strings "NaN",
** "Infinity" and "-Infinity": the page draws them as gaps and names them
** under the figure, as it does values past +-1e300 (Chart.js's axis ticks
** overflow near DBL_MAX, and its tick loop then never ends).
**
** Cost. Every write is O(points). Reports on batch callbacks (after_batch,
** before_batch) write at most once per KILN_PLOT_MIN_SECONDS, the others
** (epochs, the end of training, an error) always: a run that plots every
** batch for a million batches rewrites its file once a second, not a
** million times. The points live in memory, 16 bytes each.
**
** Resuming (#8). A loop that resumes from a checkpoint (iterations_done > 0
** when the extension attaches before the run starts, as TrackTheBest
** recovers its best) gets the points of the run so far from the log it
** loaded: a point per row up to iterations_done for every channel the row
** holds. That is the page the run would have drawn when Plot reports
** whenever its channels are written (the monitors and Plot on one trigger,
** as in Blocks' examples); a channel written more often than Plot reports
** (every batch, plotted every epoch) gets a point per row it was written in.
** Rejected: reading the old data file back (it may be gone, another run's,
** or hold points past the checkpoint that the resumed run recomputes). */
#include "runtime/mainloop.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln_config.h"

/* Batch-callback reports closer together than this share one write. */
#define KILN_PLOT_MIN_SECONDS 1.0
/* A charting library larger than this is not a Chart.js build. */
#define KILN_PLOT_LIBRARY_MAX (16L << 20)
/* Bokeh's Category10, Blocks' palette: one colour per series, in order. */
static const char *const PLOT_COLORS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define PLOT_N_COLORS ((int)(sizeof PLOT_COLORS / sizeof PLOT_COLORS[0]))

typedef struct plot_series {
    char *name;
    int64_t n, cap;
    int64_t *x; /* iterations_done, increasing */
    double *y;
} plot_series;

typedef struct plot_figure {
    int n;
    int *series; /* indices into plot_state.series */
} plot_figure;

typedef struct plot_state {
    char *document;
    char *page, *data, *data_base; /* data_base: the data file's name in the page's folder */
    char *library_path;
    char *library; /* its text, while the page is being written */
    bool page_written;
    int n_series;
    plot_series *series;
    int n_figures;
    plot_figure *figures;
    int64_t version; /* data writes so far */
    double last_write;
    bool dirty; /* points not yet written */
    bool resumed; /* the points before a resume were read from the log */
    const char *state; /* "training", "finished", "failed", "interrupted" */
} plot_state;

static double plot_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void plot_destroy(kiln_extension *e)
{
    plot_state *s = e->state;
    if (!s)
        return;
    for (int i = 0; i < s->n_series; i++) {
        free(s->series[i].name);
        free(s->series[i].x);
        free(s->series[i].y);
    }
    for (int i = 0; i < s->n_figures; i++)
        free(s->figures[i].series);
    free(s->series);
    free(s->figures);
    free(s->document);
    free(s->page);
    free(s->data);
    free(s->data_base);
    free(s->library_path);
    free(s->library);
    free(s);
    e->state = NULL;
}

/* ---- Writing JSON and HTML ------------------------------------------------ */

/* Decode one UTF-8 sequence at p (n >= 1 bytes left): the code point, or
** U+FFFD for a malformed one; *len its length (>= 1). */
static uint32_t utf8_next(const unsigned char *p, size_t n, size_t *len)
{
    static const uint32_t MIN[4] = {0, 0x80, 0x800, 0x10000};
    int extra = p[0] < 0x80                ? 0
                : (p[0] & 0xE0) == 0xC0 ? 1
                : (p[0] & 0xF0) == 0xE0 ? 2
                : (p[0] & 0xF8) == 0xF0 ? 3
                                        : -1;
    *len = 1;
    if (extra == 0)
        return p[0];
    if (extra < 0 || (size_t)extra >= n)
        return 0xFFFD;
    uint32_t c = p[0] & (0x3Fu >> extra);
    for (int k = 1; k <= extra; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0xFFFD;
        c = (c << 6) | (p[k] & 0x3Fu);
    }
    if (c < MIN[extra] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0xFFFD;
    *len = (size_t)extra + 1;
    return c;
}

/* The characters of s inside a JSON string, in ASCII: printable ASCII other
** than " \ < > & ' as itself, everything else as \uXXXX (UTF-16 pairs past
** U+FFFF), so the string is inert in JavaScript, in JSON and inside an HTML
** <script>. */
static void json_chars(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        size_t len;
        uint32_t c = utf8_next(p, n, &len);
        p += len;
        n -= len;
        if (c >= 0x20 && c < 0x7F && !strchr("\"\\<>&'", (int)c))
            fputc((int)c, f);
        else if (c == '"' || c == '\\')
            fprintf(f, "\\%c", (int)c);
        else if (c > 0xFFFF)
            fprintf(f, "\\u%04x\\u%04x", (unsigned)(0xD800 + ((c - 0x10000) >> 10)),
                    (unsigned)(0xDC00 + ((c - 0x10000) & 0x3FF)));
        else
            fprintf(f, "\\u%04x", (unsigned)c);
    }
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    json_chars(f, s);
    fputc('"', f);
}

/* v as a JSON number with the fewest of 15..17 significant digits that read
** back as v; non-finite values as the strings JavaScript's String() gives. */
static void json_number(FILE *f, double v)
{
    if (isnan(v)) {
        fputs("\"NaN\"", f);
        return;
    }
    if (isinf(v)) {
        fputs(v > 0 ? "\"Infinity\"" : "\"-Infinity\"", f);
        return;
    }
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
}

/* s with & < > " ' as character references. */
static void html_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* Write path through a temporary file beside it, renamed over it when every
** byte is out: readers see the old file or the new one, never a part. */
static enum kiln_status write_atomically(kiln_extension *e, const char *path,
                                         void (*write)(FILE *f, const plot_state *s),
                                         const plot_state *s)
{
    size_t n = strlen(path) + sizeof ".tmp";
    char *tmp = malloc(n);
    if (!tmp)
        return kiln_extension_fail(e, KILN_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        enum kiln_status st =
            kiln_extension_fail(e, KILN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    write(f, s);
    int bad = ferror(f);
    int err = bad ? EIO : 0;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        err = errno;
    }
    enum kiln_status st = KILN_OK;
    if (bad) {
        remove(tmp);
        st = kiln_extension_fail(e, KILN_ERR_IO, "%s: cannot write: %s", path, strerror(err));
    }
    free(tmp);
    return st;
}

/* ---- The data file ------------------------------------------------------------ */

/* The data file: the header, the figures (title, series indices), then each
** series (name, colour, x, y). Write errors show in ferror(f). */
static void write_data(FILE *f, const plot_state *s)
{
    fputs("/* kiln's Plot extension: the data of a live plot page, rewritten after each "
          "report. */\nkiln_plot_data({\"format\": \"kiln-plot 1\", \"document\": ",
          f);
    json_string(f, s->document);
    fprintf(f, ", \"version\": %lld, \"state\": \"%s\",\n\"figures\": [", (long long)s->version,
            s->state);
    for (int i = 0; i < s->n_figures; i++) {
        /* Blocks' title: '{document} #{i + 1}' */
        fputs(i ? ",\n  {\"title\": \"" : "\n  {\"title\": \"", f);
        json_chars(f, s->document);
        fprintf(f, " #%d\"", i + 1);
        fputs(", \"series\": [", f);
        for (int j = 0; j < s->figures[i].n; j++)
            fprintf(f, j ? ", %d" : "%d", s->figures[i].series[j]);
        fputs("]}", f);
    }
    fputs("],\n\"series\": [", f);
    for (int i = 0; i < s->n_series; i++) {
        const plot_series *c = &s->series[i];
        fputs(i ? ",\n  {\"name\": " : "\n  {\"name\": ", f);
        json_string(f, c->name);
        fprintf(f, ", \"color\": \"%s\",\n   \"x\": [", PLOT_COLORS[i % PLOT_N_COLORS]);
        for (int64_t k = 0; k < c->n; k++)
            fprintf(f, k ? ", %lld" : "%lld", (long long)c->x[k]);
        fputs("],\n   \"y\": [", f);
        for (int64_t k = 0; k < c->n; k++) {
            if (k)
                fputs(", ", f);
            json_number(f, c->y[k]);
        }
        fputs("]}", f);
    }
    fputs("]});\n", f);
}

static enum kiln_status plot_write_data(kiln_extension *e, plot_state *s)
{
    s->version++;
    enum kiln_status st = write_atomically(e, s->data, write_data, s);
    if (st == KILN_OK) {
        s->dirty = false;
        s->last_write = plot_now();
    }
    return st;
}

/* ---- The page ----------------------------------------------------------------- */

/* The page's own script: load the data file again and again, redraw on a new
** version. With #kiln-selftest in the URL it also counts, per series, the
** pixels of the series' colour inside the plot area (what the tests read
** from the DOM to see that the curve was drawn). */
static const char PAGE_SCRIPT[] =
    "(function () {\n"
    "'use strict';\n"
    "var PERIOD_MS = 1000;\n"
    "/* Chart.js's axis ticks overflow (and loop for ever) near DBL_MAX. */\n"
    "var LIMIT = 1e300;\n"
    "var SELFTEST = location.hash === '#kiln-selftest';\n"
    "var figuresEl = document.getElementById('kiln-figures');\n"
    "var stateEl = document.getElementById('kiln-state');\n"
    "var titleEl = document.getElementById('kiln-title');\n"
    "var drawnEl = document.getElementById('kiln-plot-drawn');\n"
    "var charts = [], layout = null, version = null;\n"
    "function value(v) {\n"
    "  return typeof v === 'number' ? v : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : NaN;\n"
    "}\n"
    "function build(d) {\n"
    "  figuresEl.textContent = '';\n"
    "  charts = [];\n"
    "  d.figures.forEach(function (f) {\n"
    "    var box = document.createElement('div'), holder = document.createElement('div');\n"
    "    var canvas = document.createElement('canvas'), caption = document.createElement('p');\n"
    "    box.className = 'kiln-figure'; holder.className = 'kiln-canvas'; caption.className = 'kiln-caption';\n"
    "    holder.appendChild(canvas); box.appendChild(holder); box.appendChild(caption);\n"
    "    figuresEl.appendChild(box);\n"
    "    var chart = new Chart(canvas, {\n"
    "      type: 'line',\n"
    "      data: {datasets: f.series.map(function (i) {\n"
    "        var s = d.series[i];\n"
    "        return {label: s.name, data: [], borderColor: s.color, backgroundColor: s.color,\n"
    "                borderWidth: 2, pointRadius: 2, fill: false, spanGaps: false};\n"
    "      })},\n"
    "      options: {animation: false, parsing: false, normalized: true, maintainAspectRatio: false,\n"
    "        interaction: {mode: 'nearest', axis: 'x', intersect: false},\n"
    "        plugins: {title: {display: true, text: f.title}},\n"
    "        scales: {x: {type: 'linear', title: {display: true, text: 'iterations'}},\n"
    "                 y: {type: 'linear', title: {display: true, text: 'value'}}}}\n"
    "    });\n"
    "    charts.push({chart: chart, series: f.series, caption: caption});\n"
    "  });\n"
    "}\n"
    "function countPixels(chart, color) {\n"
    "  var a = chart.chartArea, r = chart.currentDevicePixelRatio || 1;\n"
    "  var x0 = Math.ceil(a.left * r), y0 = Math.ceil(a.top * r);\n"
    "  var w = Math.floor(a.right * r) - x0, h = Math.floor(a.bottom * r) - y0;\n"
    "  if (w <= 0 || h <= 0) return 0;\n"
    "  var px = chart.ctx.getImageData(x0, y0, w, h).data, n = 0;\n"
    "  var R = parseInt(color.substr(1, 2), 16), G = parseInt(color.substr(3, 2), 16),\n"
    "      B = parseInt(color.substr(5, 2), 16);\n"
    "  for (var k = 0; k < px.length; k += 4)\n"
    "    if (px[k] === R && px[k + 1] === G && px[k + 2] === B && px[k + 3] === 255) n++;\n"
    "  return n;\n"
    "}\n"
    "window.kiln_plot_data = function (d) {\n"
    "  if (d.version === version) return;\n"
    "  version = d.version;\n"
    "  var shape = JSON.stringify([d.figures, d.series.map(function (s) { return [s.name, s.color]; })]);\n"
    "  if (shape !== layout) { build(d); layout = shape; }\n"
    "  document.title = d.document;\n"
    "  titleEl.textContent = d.document;\n"
    "  var lines = [];\n"
    "  charts.forEach(function (c, i) {\n"
    "    var notes = [];\n"
    "    c.series.forEach(function (si, j) {\n"
    "      var s = d.series[si], n = s.x.length, pts = new Array(n), bad = 0, lastBad = -1;\n"
    "      for (var k = 0; k < n; k++) {\n"
    "        var y = value(s.y[k]);\n"
    "        if (!(Math.abs(y) <= LIMIT)) { bad++; lastBad = k; y = NaN; }\n"
    "        pts[k] = {x: s.x[k], y: y};\n"
    "      }\n"
    "      var ds = c.chart.data.datasets[j];\n"
    "      ds.data = pts;\n"
    "      ds.pointRadius = n <= 100 ? 2 : 0;\n"
    "      var note = s.name + ': ' + n + (n === 1 ? ' point' : ' points');\n"
    "      if (n) note += ', last ' + String(s.y[n - 1]) + ' at iteration ' + s.x[n - 1];\n"
    "      if (bad) note += '; ' + bad + ' not drawn (not finite or past \\u00b1' + LIMIT + '), the last ' +\n"
    "                       String(s.y[lastBad]) +\n"
    "                       ' at iteration ' + s.x[lastBad];\n"
    "      notes.push(note);\n"
    "    });\n"
    "    c.chart.update('none');\n"
    "    c.caption.textContent = notes.join(' \\u00b7 ');\n"
    "    c.series.forEach(function (si, j) {\n"
    "      var line = 'figure ' + (i + 1) + ' dataset ' + (j + 1) + ' points ' + d.series[si].x.length +\n"
    "                 ' drawn ' + c.chart.getDatasetMeta(j).data.length;\n"
    "      if (SELFTEST) line += ' pixels ' + countPixels(c.chart, d.series[si].color);\n"
    "      lines.push(line);\n"
    "    });\n"
    "  });\n"
    "  stateEl.textContent = d.state + ', data version ' + d.version + ', read ' +\n"
    "                        new Date().toLocaleTimeString();\n"
    "  drawnEl.textContent = lines.join('\\n');\n"
    "};\n"
    "function load() {\n"
    "  var s = document.createElement('script');\n"
    "  s.charset = 'utf-8';\n"
    "  s.src = encodeURIComponent(DATA_FILE) + '?v=' + Date.now();\n"
    "  s.onload = s.onerror = function () {\n"
    "    s.parentNode.removeChild(s);\n"
    "    setTimeout(load, PERIOD_MS);\n"
    "  };\n"
    "  document.head.appendChild(s);\n"
    "}\n"
    "load();\n"
    "})();\n";

static void write_page(FILE *f, const plot_state *s)
{
    fputs("<!DOCTYPE html>\n<!-- Written by kiln's Plot extension: a live plot of a training "
          "run. It reloads its data file every second; open it from disk. -->\n"
          "<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>",
          f);
    html_text(f, s->document);
    fputs("</title>\n<style>\n"
          "body { font-family: sans-serif; margin: 1em 2em; }\n"
          ".kiln-figure { max-width: 960px; margin-bottom: 2em; }\n"
          ".kiln-canvas { position: relative; height: 360px; }\n"
          ".kiln-caption { color: #444; font-size: 90%; }\n"
          "#kiln-state { color: #666; }\n"
          "#kiln-plot-drawn { display: none; }\n"
          "</style>\n<script>\n",
          f);
    fputs(s->library, f);
    fputs("\n</script>\n</head>\n<body>\n<h1 id=\"kiln-title\">", f);
    html_text(f, s->document);
    fputs("</h1>\n<p id=\"kiln-state\">waiting for the data file</p>\n"
          "<div id=\"kiln-figures\"></div>\n<pre id=\"kiln-plot-drawn\"></pre>\n<script>\n"
          "var DATA_FILE = ",
          f);
    json_string(f, s->data_base);
    fputs(";\n", f);
    fputs(PAGE_SCRIPT, f);
    fputs("</script>\n</body>\n</html>\n", f);
}

/* Read the charting library, refusing text that would end the <script>
** element it is inlined into. */
static enum kiln_status plot_load_library(kiln_extension *e, plot_state *s)
{
    FILE *f = fopen(s->library_path, "rb");
    if (!f)
        return kiln_extension_fail(e, KILN_ERR_IO,
                                   "%s: cannot read the charting library: %s (Debian's "
                                   "libjs-chart.js installs it)",
                                   s->library_path, strerror(errno));
    char *text = malloc((size_t)KILN_PLOT_LIBRARY_MAX + 1);
    if (!text) {
        fclose(f);
        return kiln_extension_fail(e, KILN_ERR_NOMEM, "%s: out of memory", s->library_path);
    }
    size_t n = fread(text, 1, (size_t)KILN_PLOT_LIBRARY_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    enum kiln_status st = KILN_OK;
    if (bad)
        st = kiln_extension_fail(e, KILN_ERR_IO, "%s: read error", s->library_path);
    else if (n > (size_t)KILN_PLOT_LIBRARY_MAX)
        st = kiln_extension_fail(e, KILN_ERR_FORMAT,
                                 "%s: larger than %ld bytes: not a Chart.js build",
                                 s->library_path, KILN_PLOT_LIBRARY_MAX);
    else if (n == 0 || memchr(text, '\0', n))
        st = kiln_extension_fail(e, KILN_ERR_FORMAT, "%s: %s: not a Chart.js build",
                                 s->library_path, n == 0 ? "empty" : "binary");
    if (st != KILN_OK) {
        free(text);
        return st;
    }
    text[n] = '\0';
    if (strcasestr(text, "</script") || strstr(text, "<!--")) {
        free(text);
        return kiln_extension_fail(e, KILN_ERR_FORMAT,
                                   "%s: holds '</script' or '<!--', so it cannot be inlined in "
                                   "the page",
                                   s->library_path);
    }
    char *shrunk = realloc(text, n + 1);
    s->library = shrunk ? shrunk : text;
    return KILN_OK;
}

/* ---- The extension ------------------------------------------------------------ */

static enum kiln_status series_append(kiln_extension *e, plot_series *c, int64_t x, double y);

/* A point for every channel the row of iteration it holds, as plot_run. */
static enum kiln_status plot_read_row(kiln_extension *e, plot_state *s, kiln_main_loop *m, int64_t it)
{
    for (int i = 0; i < s->n_series; i++) {
        const kiln_log_record *r = NULL;
        enum kiln_status st = kiln_log_read(&m->log, it, s->series[i].name, &r);
        if (st != KILN_OK)
            return kiln_extension_fail(e, st, "reading channel '%s': %s", s->series[i].name,
                                       m->log.err.msg);
        if (!r || r->kind == KILN_LOG_TEXT)
            continue;
        if ((st = series_append(e, &s->series[i], it, r->value)) != KILN_OK)
            return st;
        s->dirty = true;
    }
    return KILN_OK;
}

/* A resumed loop: the points so far from its log (see the top). */
static enum kiln_status plot_recover(kiln_extension *e, plot_state *s, kiln_main_loop *m)
{
    s->resumed = true;
    for (int64_t it = 0; it <= m->iterations_done; it++) {
        if (!m->log.db && !kiln_log_row_at(&m->log, it))
            continue; /* in memory: no row, no point (the SQLite log reads each) */
        enum kiln_status st = plot_read_row(e, s, m, it);
        if (st != KILN_OK)
            return st;
    }
    return plot_write_data(e, s);
}

/* Once: read the library, write the page and an empty data file, so that a
** bad path fails when the extension is added, before any training. Then,
** once, the points of a resumed run. */
static enum kiln_status plot_attach(kiln_extension *e, kiln_main_loop *m)
{
    plot_state *s = e->state;
    enum kiln_status st = KILN_OK;
    if (!s->page_written) {
        st = plot_load_library(e, s);
        if (st == KILN_OK)
            st = write_atomically(e, s->page, write_page, s);
        if (st == KILN_OK)
            st = plot_write_data(e, s);
        free(s->library); /* in the page now */
        s->library = NULL;
        s->page_written = st == KILN_OK;
    }
    if (st == KILN_OK && !s->resumed && m && !m->training_started && m->iterations_done > 0)
        st = plot_recover(e, s, m);
    return st;
}

static enum kiln_status series_append(kiln_extension *e, plot_series *c, int64_t x, double y)
{
    if (c->n > 0 && c->x[c->n - 1] == x) { /* a second report of this iteration */
        c->y[c->n - 1] = y;
        return KILN_OK;
    }
    if (c->n == c->cap) {
        int64_t cap = c->cap ? 2 * c->cap : 64;
        int64_t *nx = realloc(c->x, (size_t)cap * sizeof *nx);
        if (nx)
            c->x = nx;
        double *ny = nx ? realloc(c->y, (size_t)cap * sizeof *ny) : NULL;
        if (ny)
            c->y = ny;
        if (!nx || !ny)
            return kiln_extension_fail(e, KILN_ERR_NOMEM, "channel '%s': %lld points: out of memory",
                                       c->name, (long long)cap);
        c->cap = cap;
    }
    c->x[c->n] = x;
    c->y[c->n] = y;
    c->n++;
    return KILN_OK;
}

/* Blocks' Plot.do: a point per channel in the current row, then the file. */
static enum kiln_status plot_run(kiln_extension *e, kiln_main_loop *m, enum kiln_callback which)
{
    plot_state *s = e->state;
    enum kiln_status st = plot_read_row(e, s, m, m->iterations_done);
    if (st != KILN_OK)
        return st;
    if (which == KILN_CALLBACK_AFTER_TRAINING)
        s->state = "finished";
    else if (which == KILN_CALLBACK_ON_ERROR)
        s->state = "failed";
    else if (which == KILN_CALLBACK_ON_INTERRUPT)
        s->state = "interrupted";
    bool batch = which == KILN_CALLBACK_AFTER_BATCH || which == KILN_CALLBACK_BEFORE_BATCH;
    if (batch && plot_now() - s->last_write < KILN_PLOT_MIN_SECONDS)
        return KILN_OK;
    if (!s->dirty && batch)
        return KILN_OK;
    return plot_write_data(e, s);
}

static const kiln_extension_ops PLOT_OPS = {plot_attach, plot_run, plot_destroy, NULL};

/* The data file's path and its name relative to the page's folder. */
static bool plot_data_paths(plot_state *s)
{
    size_t n = strlen(s->page), stem = n;
    if (n > 5 && strcmp(s->page + n - 5, ".html") == 0)
        stem = n - 5;
    else if (n > 4 && strcmp(s->page + n - 4, ".htm") == 0)
        stem = n - 4;
    s->data = malloc(stem + sizeof ".data.js");
    if (!s->data)
        return false;
    memcpy(s->data, s->page, stem);
    memcpy(s->data + stem, ".data.js", sizeof ".data.js");
    const char *slash = strrchr(s->data, '/');
    s->data_base = kiln_strdup(slash ? slash + 1 : s->data);
    return s->data_base != NULL;
}

/* Index of the series named name, added when new; -1 when out of memory. */
static int plot_series_index(plot_state *s, const char *name)
{
    for (int i = 0; i < s->n_series; i++)
        if (strcmp(s->series[i].name, name) == 0)
            return i;
    plot_series *ns = realloc(s->series, (size_t)(s->n_series + 1) * sizeof *ns);
    if (!ns)
        return -1;
    s->series = ns;
    memset(&ns[s->n_series], 0, sizeof *ns);
    if (!(ns[s->n_series].name = kiln_strdup(name)))
        return -1;
    return s->n_series++;
}

/* Check the figures and copy them into s; false with e's error set.
** Plan: 1. count the figures; 2. per figure, check each name (length, not
** twice in the figure) and point it at its series, made on first sight. */
static bool plot_copy_figures(kiln_extension *e, plot_state *s, const char *const *const *figures)
{
    if (!figures || !figures[0]) {
        kiln_err_set(&e->err, KILN_ERR_ARG, "channels: %s: give at least one figure",
                     figures ? "no figure" : "NULL");
        return false;
    }
    int nf = 0;
    while (figures[nf])
        nf++;
    if (!(s->figures = calloc((size_t)nf, sizeof *s->figures))) {
        kiln_err_set(&e->err, KILN_ERR_NOMEM, "channels: %d figures: out of memory", nf);
        return false;
    }
    s->n_figures = nf;
    for (int i = 0; i < nf; i++) {
        const char *const *names = figures[i];
        int nc = 0;
        while (names[nc])
            nc++;
        if (nc == 0) {
            kiln_err_set(&e->err, KILN_ERR_ARG, "channels: figure %d has no channel", i + 1);
            return false;
        }
        if (!(s->figures[i].series = malloc((size_t)nc * sizeof(int)))) {
            kiln_err_set(&e->err, KILN_ERR_NOMEM, "channels: figure %d: out of memory", i + 1);
            return false;
        }
        for (int j = 0; j < nc; j++) {
            size_t len = strlen(names[j]);
            if (len == 0 || len > KILN_MAX_NAME) {
                kiln_err_set(&e->err, KILN_ERR_ARG,
                             "channels: figure %d, channel %d: a log key has 1 to %d "
                             "characters, got %zu",
                             i + 1, j + 1, KILN_MAX_NAME, len);
                return false;
            }
            for (int k = 0; k < j; k++)
                if (strcmp(s->series[s->figures[i].series[k]].name, names[j]) == 0) {
                    kiln_err_set(&e->err, KILN_ERR_ARG,
                                 "channels: figure %d names channel '%s' twice", i + 1, names[j]);
                    return false;
                }
            int idx = plot_series_index(s, names[j]);
            if (idx < 0) {
                kiln_err_set(&e->err, KILN_ERR_NOMEM, "channels: out of memory");
                return false;
            }
            s->figures[i].series[s->figures[i].n++] = idx;
        }
    }
    return true;
}

kiln_extension *kiln_plot(const char *document, const char *path,
                          const char *const *const *channels)
{
    plot_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->state = "training";
    kiln_extension *e = kiln_extension_new("Plot", &PLOT_OPS, s);
    if (!e)
        return NULL;
    if (!document || !path || !*path) {
        kiln_err_set(&e->err, KILN_ERR_ARG, "Plot: %s", !document ? "document name is NULL"
                                                      : !path   ? "path is NULL"
                                                                : "path is empty");
        return e;
    }
    if (!(s->document = kiln_strdup(document)) || !(s->page = kiln_strdup(path)) ||
        !(s->library_path = kiln_strdup(KILN_CHARTJS_PATH)) || !plot_data_paths(s)) {
        kiln_err_set(&e->err, KILN_ERR_NOMEM, "Plot '%s': out of memory", document);
        return e;
    }
    if (!plot_copy_figures(e, s, channels))
        return e;
    /* Blocks' defaults, and on_error and on_interrupt so that a failed or
    ** interrupted run leaves its last points on the page. */
    static const enum kiln_trigger DEFAULTS[] = {KILN_TRIGGER_BEFORE_FIRST_EPOCH,
                                                 KILN_TRIGGER_AFTER_EPOCH,
                                                 KILN_TRIGGER_AFTER_TRAINING, KILN_TRIGGER_ON_ERROR,
                                                 KILN_TRIGGER_ON_INTERRUPT};
    for (size_t i = 0; i < sizeof DEFAULTS / sizeof DEFAULTS[0]; i++)
        if (kiln_extension_add_trigger(e, DEFAULTS[i], 0) != KILN_OK)
            break;
    return e;
}

enum kiln_status kiln_plot_set_library(kiln_extension *e, const char *path)
{
    KILN_API_CHECK(e);
    if (!e)
        return KILN_ERR_ARG;
    if (e->ops != &PLOT_OPS)
        return kiln_err_set(&e->err, KILN_ERR_ARG,
                            "plot_set_library: extension '%s' is not a Plot", e->name);
    if (!path)
        return kiln_err_set(&e->err, KILN_ERR_ARG, "plot_set_library: path is NULL");
    plot_state *s = e->state;
    if (e->loop || s->page_written)
        return kiln_err_set(&e->err, KILN_ERR_STATE,
                            "plot_set_library: the extension belongs to a main loop, which "
                            "wrote its page (set the library before adding it)");
    char *copy = kiln_strdup(path);
    if (!copy)
        return kiln_err_set(&e->err, KILN_ERR_NOMEM, "plot_set_library: out of memory");
    free(s->library_path);
    s->library_path = copy;
    return KILN_OK;
}
