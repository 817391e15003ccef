# The activity: asks for the camera, then shows the bundled web app in a WebView.
# Written in smali (Dalvik assembly) because Debian packages no Java-to-DEX compiler;
# the Java it stands for:
#
#   public class MainActivity extends Activity {
#     protected void onCreate(Bundle state) {
#       super.onCreate(state);
#       if (checkSelfPermission("android.permission.CAMERA") != 0)
#         requestPermissions(new String[] {"android.permission.CAMERA"}, 1);
#       WebView web = new WebView(this);
#       WebSettings s = web.getSettings();
#       s.setJavaScriptEnabled(true);
#       s.setDomStorageEnabled(true);
#       s.setMediaPlaybackRequiresUserGesture(false);
#       web.setWebViewClient(new AssetClient(getAssets()));
#       web.setWebChromeClient(new CameraClient());
#       setContentView(web);
#       web.loadUrl(AssetClient.ORIGIN + "web/index.html");
#     }
#   }
.class public Lorg/tfsym3d/demo/MainActivity;
.super Landroid/app/Activity;

.method public constructor <init>()V
    .registers 1
    invoke-direct {p0}, Landroid/app/Activity;-><init>()V
    return-void
.end method

.method protected onCreate(Landroid/os/Bundle;)V
    .registers 7
    invoke-super {p0, p1}, Landroid/app/Activity;->onCreate(Landroid/os/Bundle;)V

    const-string v0, "android.permission.CAMERA"
    invoke-virtual {p0, v0}, Lorg/tfsym3d/demo/MainActivity;->checkSelfPermission(Ljava/lang/String;)I
    move-result v1
    if-eqz v1, :granted
    const/4 v1, 0x1
    new-array v2, v1, [Ljava/lang/String;
    const/4 v3, 0x0
    aput-object v0, v2, v3
    invoke-virtual {p0, v2, v1}, Lorg/tfsym3d/demo/MainActivity;->requestPermissions([Ljava/lang/String;I)V
    :granted

    new-instance v0, Landroid/webkit/WebView;
    invoke-direct {v0, p0}, Landroid/webkit/WebView;-><init>(Landroid/content/Context;)V
    invoke-virtual {v0}, Landroid/webkit/WebView;->getSettings()Landroid/webkit/WebSettings;
    move-result-object v1
    const/4 v2, 0x1
    invoke-virtual {v1, v2}, Landroid/webkit/WebSettings;->setJavaScriptEnabled(Z)V
    invoke-virtual {v1, v2}, Landroid/webkit/WebSettings;->setDomStorageEnabled(Z)V
    const/4 v2, 0x0
    invoke-virtual {v1, v2}, Landroid/webkit/WebSettings;->setMediaPlaybackRequiresUserGesture(Z)V

    invoke-virtual {p0}, Lorg/tfsym3d/demo/MainActivity;->getAssets()Landroid/content/res/AssetManager;
    move-result-object v1
    new-instance v2, Lorg/tfsym3d/demo/AssetClient;
    invoke-direct {v2, v1}, Lorg/tfsym3d/demo/AssetClient;-><init>(Landroid/content/res/AssetManager;)V
    invoke-virtual {v0, v2}, Landroid/webkit/WebView;->setWebViewClient(Landroid/webkit/WebViewClient;)V
    new-instance v2, Lorg/tfsym3d/demo/CameraClient;
    invoke-direct {v2}, Lorg/tfsym3d/demo/CameraClient;-><init>()V
    invoke-virtual {v0, v2}, Landroid/webkit/WebView;->setWebChromeClient(Landroid/webkit/WebChromeClient;)V

    invoke-virtual {p0, v0}, Lorg/tfsym3d/demo/MainActivity;->setContentView(Landroid/view/View;)V
    const-string v1, "https://appassets.androidplatform.net/web/index.html"
    invoke-virtual {v0, v1}, Landroid/webkit/WebView;->loadUrl(Ljava/lang/String;)V
    return-void
.end method
